/**
 * Verifies a token (jose) and remembers it. HS256 is only ever checked against JWT_SECRET and a
 * remote key set only ever with asymmetric algorithms, so a token cannot pick its own
 * verification path.
 */
import { createHash } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { LIMITS } from '../../protocol/limits.js';
import { principalFrom } from './claims.js';
import { toAuthError } from './jose-errors.js';
import { createKeySet, type KeySet } from './key-set.js';
import { AuthError, type Principal } from './principal.js';

export interface VerifierOptions {
  jwtSecret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  workspaceClaim: string;
  /** @defaultValue 'role' */
  roleClaim?: string;
  /** Key-set outages are logged here, once per outage. */
  log?: Logger;
  /** Verified tokens kept (by hash) until they expire, so a key-set outage does not log anyone out. @defaultValue 10000 */
  cacheSize?: number;
  /** JWKS_CACHE_MAX_AGE_MS: how long a fetched key set is used before it is fetched again. @defaultValue 60000 */
  jwksCacheMaxAgeMs?: number;
  /** JWKS_COOLDOWN_MS: the least time between two fetches caused by a key the set lacks. @defaultValue 2000 */
  jwksCooldownMs?: number;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

const ASYMMETRIC = ['EdDSA', 'RS256', 'ES256'];

interface Verified {
  principal: Principal;
  /** The key set's version it was last checked against; undefined for HS256. */
  keys?: number;
  /** Why that version no longer verifies it (its key was removed). */
  refused?: AuthError;
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  // Imported once: given the secret's bytes, jose imports a key for every token it verifies.
  const secret = options.jwtSecret
    ? crypto.subtle.importKey('raw', new TextEncoder().encode(options.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    : undefined;
  const keySet = options.jwksUrl
    ? createKeySet({
        url: options.jwksUrl,
        cacheMaxAgeMs: options.jwksCacheMaxAgeMs ?? 60_000,
        cooldownMs: options.jwksCooldownMs ?? 2_000,
        log: options.log,
      })
    : undefined;
  if (!secret && !keySet) throw new Error('createTokenVerifier needs jwtSecret or jwksUrl');
  const claimChecks = { issuer: options.issuer, audience: options.audience, requiredClaims: ['exp', 'sub'] };
  // Tokens that verified once stay verified until their exp: every REST request and reconnect
  // skips the signature check, and a key set that becomes unreachable logs no one out. A token
  // from the key set is checked again when the set changes, so a removed key lets none through.
  const verified = new LRUCache<string, Verified>({ max: options.cacheSize ?? 10_000 });

  const againstKeySet = async (token: string, keys: KeySet): Promise<JWTPayload> => {
    const fetchedAt = keys.fetchedAt;
    try {
      return (await jwtVerify(token, keys.resolve, { ...claimChecks, algorithms: ASYMMETRIC })).payload;
    } catch (error) {
      // The set lacks the key, but it was fetched before this token came and may not be fetched
      // again yet (JWKS_COOLDOWN_MS): the key may be newly published. Come back when it may be.
      if (error instanceof errors.JWKSNoMatchingKey && keys.fetchedAt === fetchedAt) {
        throw new AuthError(
          'unavailable',
          'No key in the key set matches the token yet; the set is fetched again shortly: retry with the same token after retry_after_ms.',
          keys.retryInMs(),
        );
      }
      throw toAuthError(error);
    }
  };

  const verify = async (token: string): Promise<Verified> => {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError('unauthenticated', 'The token is not a well-formed JWT.');
    }
    if (alg === 'HS256' && secret) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, await secret, { ...claimChecks, algorithms: ['HS256'] }));
      } catch (error) {
        throw toAuthError(error);
      }
      return { principal: principalFrom(payload, options) };
    }
    if (alg && ASYMMETRIC.includes(alg) && keySet) {
      const keys = keySet.version;
      return { principal: principalFrom(await againstKeySet(token, keySet), options), keys };
    }
    throw new AuthError('unauthenticated', `Tokens signed with '${String(alg)}' are not accepted here.`);
  };

  /**
   * A remembered token from a key set that changed since: still signed by a key the set has? The
   * answer is remembered too, until the set changes again.
   */
  const recheck = async (token: string, known: Verified, keys: KeySet): Promise<Principal> => {
    const version = keys.version;
    try {
      await jwtVerify(token, keys.resolve, { ...claimChecks, algorithms: ASYMMETRIC });
    } catch (error) {
      const refusal = toAuthError(error);
      // The set cannot be fetched: an outage logs no one out.
      if (refusal.code === 'unavailable') return known.principal;
      known.keys = version;
      known.refused = error instanceof errors.JWKSNoMatchingKey
        ? new AuthError('unauthenticated', 'The key that signed the token has been removed from the key set.')
        : refusal;
      throw known.refused;
    }
    known.keys = version;
    known.refused = undefined;
    return known.principal;
  };

  return async (token: string): Promise<Principal> => {
    if (token.length > LIMITS.tokenChars) {
      throw new AuthError('unauthenticated', `The token is longer than the ${LIMITS.tokenChars} characters allowed.`);
    }
    const hash = createHash('sha256').update(token).digest('base64url');
    const known = verified.get(hash);
    if (known) {
      if (known.principal.expiresAt.getTime() <= Date.now()) {
        verified.delete(hash);
        throw new AuthError('token_expired', 'The token has expired.');
      }
      if (known.keys === undefined || !keySet) return known.principal;
      keySet.refreshIfStale();
      if (known.keys !== keySet.version) return recheck(token, known, keySet);
      if (known.refused) throw known.refused;
      return known.principal;
    }
    const fresh = await verify(token);
    verified.set(hash, fresh, { ttl: Math.max(1, fresh.principal.expiresAt.getTime() - Date.now()) });
    return fresh.principal;
  };
}
