// HS256 tokens minted inside k6 from the server's JWT_SECRET (k6/crypto and k6/encoding only), so
// each virtual user can be a user of its own: the per-user rate limits then apply per VU.
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

/**
 * @param {string} secret the server's JWT_SECRET
 * @param {{ sub: string, workspace?: string, workspaceClaim?: string, ttlSeconds?: number, issuer?: string, audience?: string }} claims
 * @returns {string}
 */
export function mintToken(secret, claims) {
  const now = Math.floor(Date.now() / 1000);
  /** @type {Record<string, unknown>} */
  const body = { sub: claims.sub, iat: now, exp: now + (claims.ttlSeconds ?? 3600) };
  if (claims.workspace) body[claims.workspaceClaim ?? 'workspace_id'] = claims.workspace;
  // A server with JWT_ISSUER / JWT_AUDIENCE refuses tokens without them.
  if (claims.issuer) body.iss = claims.issuer;
  if (claims.audience) body.aud = claims.audience;
  const head = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');
  const payload = encoding.b64encode(JSON.stringify(body), 'rawurl');
  const signature = crypto.hmac('sha256', secret, `${head}.${payload}`, 'base64rawurl');
  return `${head}.${payload}.${signature}`;
}
