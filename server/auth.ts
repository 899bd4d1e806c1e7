/**
 * Handshake authentication: where the JWT comes from and how it is verified (jose). HS256 is only
 * ever checked against JWT_SECRET and a remote key set only ever with asymmetric algorithms, so a
 * token cannot pick its own verification path.
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { PROTOCOL } from '../protocol/codes.js';

export interface Principal {
  userId: string;
  workspaceId: string;
  expiresAt: Date;
  /** The token's role claim (JWT_ROLE_CLAIM); 'admin' may manage the workspace's agents. */
  roles: string[];
}

export class AuthError extends Error {
  constructor(readonly code: 'unauthenticated' | 'token_expired', message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface VerifierOptions {
  jwtSecret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  workspaceClaim: string;
  /** @defaultValue 'role' */
  roleClaim?: string;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

const ASYMMETRIC = ['EdDSA', 'RS256', 'ES256'];

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  const jwks = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 })
    : undefined;
  if (!secret && !jwks) throw new Error('createTokenVerifier needs jwtSecret or jwksUrl');
  const claimChecks = { issuer: options.issuer, audience: options.audience, requiredClaims: ['exp', 'sub'] };

  return async (token: string): Promise<Principal> => {
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
      } else {
        throw new AuthError('unauthenticated', `Tokens signed with '${String(alg)}' are not accepted here.`);
      }
    } catch (error) {
      throw toAuthError(error);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new AuthError('unauthenticated', "The token's sub claim must be a non-empty string.");
    }
    const claim = payload[options.workspaceClaim];
    // No workspace claim: the user gets a personal workspace named after them.
    const workspaceId = typeof claim === 'string' && claim !== '' ? claim : `personal:${payload.sub}`;
    const role = payload[options.roleClaim ?? 'role'];
    const roles = typeof role === 'string' ? [role] : Array.isArray(role) ? role.filter((r): r is string => typeof r === 'string') : [];
    return { userId: payload.sub, workspaceId, expiresAt: new Date(payload.exp! * 1000), roles };
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
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new AuthError('unauthenticated', 'The key set could not be fetched; try again.');
  }
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) {
    return new AuthError('unauthenticated', 'The token is not a well-formed JWT.');
  }
  return new AuthError('unauthenticated', 'The token could not be verified.');
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
