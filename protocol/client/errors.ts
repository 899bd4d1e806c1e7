/** The one error type the SDK rejects with: a server `error` frame, or a client-side failure. */
import type { ErrorCode } from '../codes.js';

export type ClientErrorCode =
  | ErrorCode
  /** No answer within the request timeout. A `send` may still have been stored: retrying with the same clientMessageId is safe. */
  | 'request_timeout'
  /** The socket dropped before the answer, and the request is not safe to repeat (e.g. thread.create). */
  | 'connection_lost'
  /** `close()` was called, or the client gave up after a refusal (see the `refused` event). */
  | 'client_closed'
  /** The token provider threw or returned no token. */
  | 'token_unavailable'
  /**
   * The socket closed before the upgrade (a browser sees a bare 1006), or the ticket request got no
   * answer: the server is unreachable, a proxy does not pass WebSocket upgrades, or the request head
   * was over the server's limit. A status detail: the client keeps trying with backoff (it stops
   * only after an HTTP 431 with a forced transport).
   */
  | 'connect_failed';

export class ConversationError extends Error {
  constructor(
    readonly code: ClientErrorCode | string,
    message: string,
    /** Whether the same request may succeed later unchanged. */
    readonly retryable = false,
    readonly retryAfterMs?: number,
    /** `seq_out_of_range`: the thread's newest seq. */
    readonly lastSeq?: number,
  ) {
    super(message);
    this.name = 'ConversationError';
  }
}
