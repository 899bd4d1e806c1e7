/**
 * Handshake authentication, one job per file under auth/: where the JWT comes from
 * (credentials), the remote key set (key-set), verifying and remembering tokens (verifier), the
 * claims a principal is made of (claims), and signing development tokens (sign).
 */
export { AuthError, type Principal } from './auth/principal.js';
export { extractCredentials, type UpgradeCredentials } from './auth/credentials.js';
export { createTokenVerifier, type TokenVerifier, type VerifierOptions } from './auth/verifier.js';
export { PERSONAL_PREFIX } from './auth/claims.js';
export { DEV_IDENTITY, signToken, type TokenClaims } from './auth/sign.js';
