/** Signs HS256 tokens: development tokens (the banner, GET /dev/token, `npm run token`) and tests. */
import { SignJWT, type JWTPayload } from 'jose';

export interface TokenClaims {
  sub: string;
  /** Written under `workspaceClaim`; without it the server puts the user in `personal:<sub>`. */
  workspace?: string;
  ttlSeconds: number;
  /** @defaultValue 'workspace_id' */
  workspaceClaim?: string;
  issuer?: string;
  audience?: string;
  extra?: Record<string, unknown>;
}

/**
 * The identity every development token is for unless told otherwise: the start-up banner's token,
 * GET /dev/token (the demo page) and `npm run token` all mint it, so they see the same threads.
 */
export const DEV_IDENTITY = { sub: 'dev', workspace: 'dev' } as const;

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
