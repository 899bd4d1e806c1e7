/**
 * Where the element gets its JWT: a callback the host sets (`element.token = async () => jwt`), or
 * an endpoint on the host app that answers `{ "token": "<jwt>" }` to a same-origin request with
 * the user's cookies (the host signs the token, e.g. with Better Auth's JWT plugin).
 */
export type TokenCallback = () => string | Promise<string>;

export class TokenSourceError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'TokenSourceError';
  }
}

export function endpointTokenSource(endpoint: string, method: 'GET' | 'POST'): TokenCallback {
  return async () => {
    let res: Response;
    try {
      res = await fetch(endpoint, { method, credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' });
    } catch {
      throw new TokenSourceError(`Could not reach ${endpoint} for a chat token.`);
    }
    if (!res.ok) {
      throw new TokenSourceError(
        res.status === 401 || res.status === 403
          ? `${endpoint} did not give a chat token (HTTP ${res.status}): are you signed in?`
          : `${endpoint} did not give a chat token (HTTP ${res.status}).`,
        res.status,
      );
    }
    const body = (await res.json().catch(() => undefined)) as { token?: unknown } | undefined;
    if (typeof body?.token !== 'string' || body.token === '') throw new TokenSourceError(`${endpoint} answered without a "token" field.`);
    return body.token;
  };
}
