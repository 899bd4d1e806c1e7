/**
 * Every error code and close code the server uses, in one place. Handlers never write a code
 * inline; they name one of these.
 *
 * `retryable: true` means the same request may succeed later unchanged (after `retry_after_ms`
 * when the error carries it). `retryable: false` means the client must change something first.
 * `status` is the HTTP status of the REST answer that carries the code.
 */
export const ErrorCodes = {
  // -- the frame itself ----------------------------------------------------------------------
  /** Not JSON, not an object, or a payload that breaks the frame's schema. Fix the frame. */
  invalid_frame: { retryable: false, status: 400, message: 'The frame is not valid.' },
  /** A REST request whose body, path or query is not valid. Fix the request. */
  invalid_request: { retryable: false, status: 400, message: 'The request is not valid.' },
  /** `type` names no frame this server knows. Check the protocol version. */
  unknown_type: { retryable: false, status: 400, message: 'Unknown frame type.' },
  /** Binary frames are not part of protocol v1; send JSON text frames. */
  binary_not_supported: { retryable: false, status: 400, message: 'Binary frames are not supported; send JSON text frames.' },
  /** The frame (or its content) is larger than the server accepts. */
  too_large: { retryable: false, status: 413, message: 'The frame is too large.' },

  // -- who you are ---------------------------------------------------------------------------
  /** No token, or a token that does not verify. Get a new token and reconnect. */
  unauthenticated: { retryable: false, status: 401, message: 'Authentication is required.' },
  /** The token's `exp` has passed. Refresh the token and reconnect. */
  token_expired: { retryable: false, status: 401, message: 'The token has expired.' },
  /** Authenticated, but this resource belongs to someone else. Do not retry. */
  forbidden: { retryable: false, status: 403, message: 'You do not have access to this resource.' },
  /** The thread, run or agent does not exist (or is not visible to you). */
  not_found: { retryable: false, status: 404, message: 'Not found.' },
  /**
   * `thread.subscribe` asked for events after a seq the thread has not reached (the error carries
   * the thread's `last_seq`). The client's state is ahead of the server's (a database restored
   * from a backup): drop the thread's local state and subscribe again from 0 or from `last_seq`.
   */
  seq_out_of_range: { retryable: false, status: 409, message: 'The thread has no events after that seq yet.' },

  // -- state ---------------------------------------------------------------------------------
  /** The request conflicts with current state (e.g. cancelling a finished run). */
  conflict: { retryable: false, status: 409, message: 'The request conflicts with the current state.' },
  /**
   * The tool call was answered before (approved, denied, expired or cancelled with its run): the
   * first answer stands. Do not retry; follow the thread's events (`approval_resolved`) for the decision.
   */
  already_answered: { retryable: false, status: 409, message: 'The tool call was already answered.' },
  /** A run is active on the thread and the busy policy is `reject`. Retry after it completes. */
  thread_busy: { retryable: true, status: 409, message: 'A run is already active on this thread.' },
  /**
   * A quota that time does not restore: e.g. the threads one connection may follow. Free something
   * first (unsubscribe from a thread), then retry.
   */
  limit_exceeded: { retryable: false, status: 429, message: 'A quota is used up.' },
  /** Too many requests. Wait `retry_after_ms`, then retry. */
  rate_limited: { retryable: true, status: 429, message: 'Too many requests.' },

  // -- the server ----------------------------------------------------------------------------
  /** A dependency (database, queue) is unreachable right now. Retry with backoff. */
  unavailable: { retryable: true, status: 503, message: 'The service is temporarily unavailable.' },
  /** An unexpected failure. Details are in the server log, never in the frame. */
  internal_error: { retryable: true, status: 500, message: 'Internal server error.' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * Whether `code` is one of the codes above: an own key of ErrorCodes, so a name every object
 * inherits (`toString`, `constructor`, `__proto__`) is not taken for a code. Check a code from
 * the wire with this, never with `in`.
 */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCodes, code);
}

/** The HTTP status of a REST answer carrying `code`. */
export function httpStatus(code: ErrorCode): number {
  return ErrorCodes[code].status;
}

/** Whether a request refused with `code` may succeed later unchanged (carried in every `error` frame). */
export function isRetryable(code: ErrorCode): boolean {
  return ErrorCodes[code].retryable;
}

/** Codes a run can fail with; carried in `agent_completed.error.code` when status is `failed`. */
export const RunErrorCodes = {
  /** The LLM provider answered with an error after retries (429/5xx/4xx). */
  llm_error: 'The language model returned an error.',
  /** The provider has failed repeatedly; turns fail fast until it recovers. */
  llm_unavailable: 'The language model is unavailable.',
  /** The LLM request did not answer in time. */
  llm_timeout: 'The language model did not answer in time.',
  /** The model kept calling tools past the agent's iteration cap. */
  tool_iterations_exceeded: 'The model called tools too many times.',
  /** The worker that held the run stopped and the run could not be resumed. */
  worker_lost: 'The worker running this turn stopped.',
  /** Anything else; details are in the server log. */
  internal_error: 'The turn failed unexpectedly.',
} as const;

export type RunErrorCode = keyof typeof RunErrorCodes;

/**
 * WebSocket close codes. 4xxx are ours; 1xxx are RFC 6455's. What a client should do is in the
 * comment of each.
 */
export const CloseCodes = {
  /** Server shutting down or restarting. Reconnect (to another gateway) and resume by seq. */
  going_away: 1001,
  /** A frame was over the size limit. Do not resend it; reconnecting is fine. */
  too_large: 1009,
  /** Unexpected server failure. Reconnect with backoff. */
  internal_error: 1011,
  /** The client read too slowly (or the server is overloaded). Reconnect and resume by seq. */
  slow_consumer: 1013,
  /**
   * Unauthenticated or the token expired; the close reason is the error code (`token_expired`:
   * refresh the token and reconnect; `unauthenticated`: get a new token, do not retry this one).
   */
  unauthenticated: 4001,
  /** The token is valid but not allowed this (a refresh for another user, a refused origin). Do not reconnect as is. */
  forbidden: 4003,
  /**
   * Policy: rate limit or too many bad frames. Back off before reconnecting: the reason reads
   * `rate_limited retry_after_ms=<n>` when the server knows how long.
   */
  policy: 4008,
  /** A dependency the handshake needs (the JWKS, Redis) is unreachable. Reconnect with backoff; keep the token. */
  unavailable: 4503,
} as const;

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/**
 * Close codes that tell a client not to reconnect as it is: a new connection with the same
 * credentials would be refused the same way (get a new token, or stop).
 */
export const FATAL_CLOSE_CODES: readonly number[] = [CloseCodes.unauthenticated, CloseCodes.forbidden];

/**
 * A refusal delivered as a close after the upgrade (to browsers, which cannot read a handshake
 * response): the reason is `<error code>` or `<error code> retry_after_ms=<n>`. Kept well under
 * the 123 bytes a close reason may hold.
 */
export function refusalReason(code: ErrorCode, retryAfterMs?: number): string {
  return retryAfterMs === undefined ? code : `${code} retry_after_ms=${Math.max(0, Math.round(retryAfterMs))}`;
}

/** Reads a close reason written by `refusalReason`; undefined for any other reason. */
export function parseRefusalReason(reason: string): { code: ErrorCode; retryAfterMs?: number } | undefined {
  const match = /^([a-z_]+)(?: retry_after_ms=(\d+))?$/.exec(reason);
  if (!match || !isErrorCode(match[1])) return undefined;
  return { code: match[1], ...(match[2] !== undefined ? { retryAfterMs: Number(match[2]) } : {}) };
}

/** The reason of a 1009 close: it names the limit, so a client stops resending what cannot fit. */
export function tooLargeReason(maxFrameBytes: number): string {
  return `frame over ${maxFrameBytes} bytes`;
}

/** The limit a reason written by `tooLargeReason` names; undefined for any other reason. */
export function parseTooLargeReason(reason: string): number | undefined {
  const match = /over (\d+) bytes/.exec(reason);
  return match ? Number(match[1]) : undefined;
}

/** The subprotocol the server speaks; a client may offer it in Sec-WebSocket-Protocol. */
export const PROTOCOL = 'chat.v1';
