/**
 * Handshake authentication: where the JWT comes from and how it is verified (jose). HS256 is only
 * ever checked against JWT_SECRET and a remote key set only ever with asymmetric algorithms, so a
 * token cannot pick its own verification path.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { PROTOCOL } from '../protocol/codes.js';

export interface Principal {
  userId: string;
  workspaceId: string;
  expiresAt: Date;
  /** The token's role claim (JWT_ROLE_CLAIM); 'admin' may manage the workspace's agents. */
  roles: string[];
}

/** How long a client refused with `unavailable` (key set unreachable) should wait. */
const KEY_SET_RETRY_MS = 5_000;

/**
 * Why a token was not accepted. `unavailable` is not about the token: the key set could not be
 * fetched (retry with the same token); the other two are (get a new token).
 */
export class AuthError extends Error {
  /** How long to wait before trying the same token again: set for `unavailable` (the key set is unreachable). */
  readonly retryAfterMs?: number;

  constructor(readonly code: 'unauthenticated' | 'token_expired' | 'unavailable', message: string) {
    super(message);
    this.name = 'AuthError';
    if (code === 'unavailable') this.retryAfterMs = KEY_SET_RETRY_MS;
  }
}

/**
 * Time claims (`exp`, `nbf`, `iat`) must be whole seconds a Date can hold and an ISO string can
 * print: up to 9999-12-31T23:59:59Z. A signed token with `exp: 9e15` is refused, not trusted to
 * build a Date that throws later.
 */
const LATEST_TIME_CLAIM = 253_402_300_799;

/** Shared by every principal without a role (most of them), rather than an array each. */
const NO_ROLES: string[] = Object.freeze([]) as unknown as string[];

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
  /** How long a fetched key set is trusted before it is fetched again (jose's cacheMaxAge). @defaultValue 600000 */
  jwksCacheMaxAgeMs?: number;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

const ASYMMETRIC = ['EdDSA', 'RS256', 'ES256'];

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  const jwks = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl), {
        timeoutDuration: 5_000,
        cooldownDuration: options.jwksCacheMaxAgeMs === 0 ? 0 : 30_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      })
    : undefined;
  if (!secret && !jwks) throw new Error('createTokenVerifier needs jwtSecret or jwksUrl');
  const claimChecks = { issuer: options.issuer, audience: options.audience, requiredClaims: ['exp', 'sub'] };
  // Tokens that verified once stay verified until their exp: every REST request and reconnect
  // skips the signature check, and a key set that becomes unreachable logs no one out.
  const verified = new LRUCache<string, Principal>({ max: options.cacheSize ?? 10_000 });
  let keySetDown = false;

  const verify = async (token: string): Promise<Principal> => {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError('unauthenticated', 'The token is not a well-formed JWT.');
    }
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...claimChecks, algorithms: ['HS256'] }));
      } else if (alg && ASYMMETRIC.includes(alg) && jwks) {
        ({ payload } = await jwtVerify(token, jwks, { ...claimChecks, algorithms: ASYMMETRIC }));
        if (keySetDown) {
          keySetDown = false;
          options.log?.info('the key set (JWKS_URL) answers again');
        }
      } else {
        throw new AuthError('unauthenticated', `Tokens signed with '${String(alg)}' are not accepted here.`);
      }
    } catch (error) {
      const refusal = toAuthError(error);
      if (refusal.code === 'unavailable' && !keySetDown) {
        keySetDown = true;
        options.log?.warn({ err: error }, 'the key set (JWKS_URL) cannot be fetched; tokens it would verify are refused as unavailable');
      }
      throw refusal;
    }
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      const value = payload[claim];
      if (value === undefined && claim !== 'exp') continue;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > LATEST_TIME_CLAIM) {
        throw new AuthError('unauthenticated', `The token's ${claim} claim must be a time in seconds between 1970 and 9999.`);
      }
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new AuthError('unauthenticated', "The token's sub claim must be a non-empty string.");
    }
    const claim = payload[options.workspaceClaim];
    // No workspace claim: the user gets a personal workspace named after them.
    const workspaceId = typeof claim === 'string' && claim !== '' ? claim : `personal:${payload.sub}`;
    const role = payload[options.roleClaim ?? 'role'];
    const roles = typeof role === 'string' ? [role] : Array.isArray(role) ? role.filter((r): r is string => typeof r === 'string') : NO_ROLES;
    return { userId: payload.sub, workspaceId, expiresAt: new Date(payload.exp! * 1000), roles };
  };

  return async (token: string): Promise<Principal> => {
    const key = createHash('sha256').update(token).digest('base64url');
    const known = verified.get(key);
    if (known) {
      if (known.expiresAt.getTime() > Date.now()) return known;
      verified.delete(key);
      throw new AuthError('token_expired', 'The token has expired.');
    }
    const principal = await verify(token);
    verified.set(key, principal, { ttl: Math.max(1, principal.expiresAt.getTime() - Date.now()) });
    return principal;
  };
}

function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWTExpired) return new AuthError('token_expired', 'The token has expired.');
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new AuthError('unauthenticated', `The token's ${error.claim} claim is not valid (${error.reason}).`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('unauthenticated', "The token's signature does not verify.");
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new AuthError('unauthenticated', "The token's algorithm is not allowed.");
  if (error instanceof errors.JWKSNoMatchingKey) return new AuthError('unauthenticated', 'No key in the key set matches the token.');
  // The key set could not be had (timeout, refused, not a key set): nothing is wrong with the token.
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || isFetchFailure(error)) {
    return new AuthError('unavailable', 'The key set that verifies tokens cannot be fetched right now; retry with the same token shortly.');
  }
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) {
    return new AuthError('unauthenticated', 'The token is not a well-formed JWT.');
  }
  return new AuthError('unauthenticated', 'The token could not be verified.');
}

/** A failed fetch of the key set: undici's `TypeError('fetch failed')`, a refused or reset connection, or a non-2xx answer. */
function isFetchFailure(error: unknown): boolean {
  if (error instanceof errors.JOSEError) return error.code === 'ERR_JOSE_GENERIC' && /response|fetch/i.test(error.message);
  const code = (error as { cause?: { code?: string }; code?: string })?.cause?.code ?? (error as { code?: string })?.code;
  return (error instanceof TypeError && /fetch failed/i.test(error.message)) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '');
}

export interface UpgradeCredentials {
  token?: string;
  /** The Sec-WebSocket-Protocol value to answer with ('' for none). Never contains the token. */
  protocol: string;
}

/**
 * Finds the token in, in order: `Authorization: Bearer`, a `bearer.<jwt>` subprotocol entry, or
 * the `access_token` query parameter.
 */
export function extractCredentials(authorization: string, protocolHeader: string, accessToken: string): UpgradeCredentials {
  const offered = protocolHeader.split(',').map((p) => p.trim()).filter(Boolean);
  const protocol = offered.includes(PROTOCOL) ? PROTOCOL : '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  if (bearer) return { token: bearer, protocol };
  const fromProtocol = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
  if (fromProtocol) return { token: fromProtocol, protocol };
  return { token: accessToken || undefined, protocol };
}

export interface TokenClaims {
  sub: string;
  workspace?: string;
  ttlSeconds: number;
  workspaceClaim?: string;
  issuer?: string;
  audience?: string;
  extra?: Record<string, unknown>;
}

/** Signs an HS256 token (development tokens, `npm run token`, tests). */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const body: JWTPayload = { ...claims.extra };
  if (claims.workspace) body[claims.workspaceClaim ?? 'workspace_id'] = claims.workspace;
  let jwt = new SignJWT(body)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
