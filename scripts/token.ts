/**
 * Prints a token: `npm run -s token -- --sub alice --workspace acme --ttl 1h --role admin`.
 * Signed with JWT_SECRET, or the generated development secret under DATA_DIR. By default it is
 * for the development identity (user `dev` in workspace `dev`), the one the start-up banner and
 * the demo page sign in as. `--help` says so.
 */
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/config.js';
import { loadOrCreateDevSecret } from '../app/dev-secret.js';
import { DEV_IDENTITY, PERSONAL_PREFIX, signToken } from '../server/auth.js';

function parseTtl(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`--ttl: expected e.g. 90s, 15m, 1h or 7d, got '${text}'`);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const HELP = `Prints an HS256 token for the server, signed with JWT_SECRET (or, with none set, the
development secret the embedded server generated under DATA_DIR).

  npm run -s token -- [--sub ${DEV_IDENTITY.sub}] [--workspace ${DEV_IDENTITY.workspace} | --personal] [--ttl 1h] [--role admin]

  --sub        the user id (the token's sub)                         default: ${DEV_IDENTITY.sub}
  --workspace  the workspace (the JWT_WORKSPACE_CLAIM claim)         default: ${DEV_IDENTITY.workspace}
  --personal   no workspace claim: the user works in ${PERSONAL_PREFIX}<sub>
  --ttl        lifetime: 90s, 15m, 1h or 7d                          default: 1h
  --role       the role claim (JWT_ROLE_CLAIM); admin may manage agents
  --help       this text

With no options the token is for user "${DEV_IDENTITY.sub}" in workspace "${DEV_IDENTITY.workspace}": the identity the
start-up banner's token and the demo page (GET /dev/token) use, so it sees their threads.

Use -s so npm prints only the token, e.g. in a shell:
  TOKEN=$(npm run -s token -- --sub alice --workspace acme)
`;

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string', default: DEV_IDENTITY.sub },
      workspace: { type: 'string' },
      personal: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '1h' },
      role: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (values.personal && values.workspace !== undefined) throw new Error('--personal and --workspace exclude each other');
  if (values.workspace?.startsWith(PERSONAL_PREFIX)) {
    throw new Error(`--workspace: the server refuses a workspace claim starting with '${PERSONAL_PREFIX}'; use --personal for the user's own workspace`);
  }
  const workspace = values.personal ? undefined : values.workspace ?? DEV_IDENTITY.workspace;
  const config = loadConfig();
  const secret = config.auth.jwtSecret ?? (await loadOrCreateDevSecret(config.dataDir)).secret;
  const token = await signToken(secret, {
    sub: values.sub!,
    workspace,
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
