/**
 * Prints a token: `npm run -s token -- --sub alice --workspace acme --ttl 1h --role admin`.
 * Signed with JWT_SECRET, or the generated development secret under DATA_DIR. `--help` says so.
 */
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../server/config.js';
import { loadOrCreateDevSecret } from '../server/dev-secret.js';
import { signToken } from '../server/auth.js';

function parseTtl(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`--ttl: expected e.g. 90s, 15m, 1h or 7d, got '${text}'`);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const HELP = `Prints an HS256 token for the server, signed with JWT_SECRET (or, with none set, the
development secret the embedded server generated under DATA_DIR).

  npm run -s token -- [--sub dev] [--workspace <id>] [--ttl 1h] [--role admin]

  --sub        the user id (the token's sub)                         default: dev
  --workspace  the workspace (JWT_WORKSPACE_CLAIM); without it the user works in personal:<sub>
  --ttl        lifetime: 90s, 15m, 1h or 7d                          default: 1h
  --role       the role claim (JWT_ROLE_CLAIM); admin may manage agents
  --help       this text

Use -s so npm prints only the token, e.g. in a shell:
  TOKEN=$(npm run -s token -- --sub alice --workspace acme)
`;

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string', default: 'dev' },
      workspace: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      role: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const config = loadConfig();
  const secret = config.auth.jwtSecret ?? (await loadOrCreateDevSecret(config.dataDir)).secret;
  const token = await signToken(secret, {
    sub: values.sub!,
    workspace: values.workspace,
    ttlSeconds: parseTtl(values.ttl!),
    workspaceClaim: config.auth.workspaceClaim,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    extra: values.role ? { [config.auth.roleClaim]: values.role } : undefined,
  });
  process.stdout.write(token + '\n');
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error as Error).message}\n`);
  process.exit(1);
}
