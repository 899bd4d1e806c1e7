/**
 * The development sign-in policy. Without JWT_SECRET or JWKS_URL (and outside production) the
 * server generates an HS256 secret into DATA_DIR and uses it; the demo page may then fetch tokens
 * from GET /dev/token, but only on the embedded store and bus (a node on shared Postgres or Redis
 * is not a developer's own machine), and the banner prints a ready-made token.
 */
import type { Logger } from 'pino';
import { ConfigError, type Config } from '../config/config.js';
import { loadOrCreateDevSecret } from './dev-secret.js';

export interface SigningSecret {
  /** The HS256 secret in use: configured, generated, or none (a JWKS-only deployment). */
  jwtSecret?: string;
  /** Set when the secret was generated for development. */
  devSecretFile?: string;
}

export async function resolveSigningSecret(config: Readonly<Config>, log: Logger): Promise<SigningSecret> {
  if (config.auth.jwtSecret || config.auth.jwksUrl) return { jwtSecret: config.auth.jwtSecret };
  if (config.nodeEnv === 'production') {
    throw new ConfigError('JWT_SECRET', 'NODE_ENV=production needs JWT_SECRET (HS256) or JWKS_URL (remote key set); refusing to start with a development secret.');
  }
  const dev = await loadOrCreateDevSecret(config.dataDir);
  log.warn({ file: dev.file, created: dev.created }, 'no JWT_SECRET or JWKS_URL: using a generated development secret (not for production)');
  return { jwtSecret: dev.secret, devSecretFile: dev.file };
}

/** Whether GET /dev/token may hand out tokens: a generated secret, outside production, all in this process. */
export function devTokensAllowed(config: Readonly<Config>, secret: SigningSecret, embedded: { store: boolean; bus: boolean }): boolean {
  return Boolean(secret.devSecretFile) && config.nodeEnv !== 'production' && embedded.store && embedded.bus;
}
