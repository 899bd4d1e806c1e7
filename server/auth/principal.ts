/** Who a verified token speaks for, and why a token was not accepted. */

export interface Principal {
  userId: string;
  workspaceId: string;
  expiresAt: Date;
  /** The token's role claim (JWT_ROLE_CLAIM); 'admin' may manage the workspace's agents. */
  roles: string[];
}

/** How long a client refused with `unavailable` because the key set is unreachable should wait. */
export const KEY_SET_RETRY_MS = 5_000;

/**
 * Why a token was not accepted. `unavailable` is not about the token: the key set could not be
 * fetched, or does not have the token's key yet (retry with the same token after `retryAfterMs`);
 * the other two are (get a new token).
 */
export class AuthError extends Error {
  /** How long to wait before trying the same token again: set for `unavailable` only. */
  readonly retryAfterMs?: number;

  constructor(readonly code: 'unauthenticated' | 'token_expired' | 'unavailable', message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'AuthError';
    if (code === 'unavailable') this.retryAfterMs = retryAfterMs ?? KEY_SET_RETRY_MS;
  }
}
