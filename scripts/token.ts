/**
 * Prints a development token: `npm run token -- --sub alice --workspace acme --ttl 1h`.
 * Signed with JWT_SECRET, or the generated development secret under DATA_DIR.
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

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string', default: 'dev' },
      workspace: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      role: { type: 'string' },
    },
  });
  const config = loadConfig();
  const secret = config.auth.jwtSecret ?? (await loadOrCreateDevSecret(config.dataDir)).secret;
  const token = await signToken(secret, {
    sub: values.sub!,
    workspace: values.workspace,
    ttlSeconds: parseTtl(values.ttl!),
    workspaceClaim: config.auth.workspaceClaim,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    extra: values.role ? { role: values.role } : undefined,
  });
  process.stdout.write(token + '\n');
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error as Error).message}\n`);
  process.exit(1);
}
