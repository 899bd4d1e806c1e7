/**
 * Every error code and close code the server uses, in one place. Handlers never write a code
 * inline; they name one of these.
 *
 * `retryable: true` means the same request may succeed later unchanged (after `retry_after_ms`
 * when the error carries it). `retryable: false` means the client must change something first.
 */
export const ErrorCodes = {
  // -- the frame itself ----------------------------------------------------------------------
  /** Not JSON, not an object, or a payload that breaks the frame's schema. Fix the frame. */
  invalid_frame: { retryable: false, message: 'The frame is not valid.' },
  /** A REST request whose body, path or query is not valid. Fix the request. */
  invalid_request: { retryable: false, message: 'The request is not valid.' },
  /** `type` names no frame this server knows. Check the protocol version. */
  unknown_type: { retryable: false, message: 'Unknown frame type.' },
  /** Binary frames are not part of protocol v1; send JSON text frames. */
  binary_not_supported: { retryable: false, message: 'Binary frames are not supported; send JSON text frames.' },
  /** The frame (or its content) is larger than the server accepts. */
  too_large: { retryable: false, message: 'The frame is too large.' },

  // -- who you are ---------------------------------------------------------------------------
  /** No token, or a token that does not verify. Get a new token and reconnect. */
  unauthenticated: { retryable: false, message: 'Authentication is required.' },
  /** The token's `exp` has passed. Refresh the token and reconnect. */
  token_expired: { retryable: false, message: 'The token has expired.' },
  /** Authenticated, but this resource belongs to someone else. Do not retry. */
  forbidden: { retryable: false, message: 'You do not have access to this resource.' },
  /** The thread, run or agent does not exist (or is not visible to you). */
  not_found: { retryable: false, message: 'Not found.' },

  // -- state ---------------------------------------------------------------------------------
  /** The request conflicts with current state (e.g. cancelling a finished run). */
  conflict: { retryable: false, message: 'The request conflicts with the current state.' },
  /** A run is active on the thread and the busy policy is `reject`. Retry after it completes. */
  thread_busy: { retryable: true, message: 'A run is already active on this thread.' },
  /** Too many requests. Wait `retry_after_ms`, then retry. */
  rate_limited: { retryable: true, message: 'Too many requests.' },

  // -- the server ----------------------------------------------------------------------------
  /** A dependency (database, queue) is unreachable right now. Retry with backoff. */
  unavailable: { retryable: true, message: 'The service is temporarily unavailable.' },
  /** An unexpected failure. Details are in the server log, never in the frame. */
  internal_error: { retryable: true, message: 'Internal server error.' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

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
  /** Unauthenticated or the token expired. Get a fresh token, then reconnect. */
  unauthenticated: 4001,
  /** The token is valid but not allowed this (e.g. refresh for another user). Do not reconnect as is. */
  forbidden: 4003,
  /** Policy: rate limit or too many bad frames. Back off before reconnecting. */
  policy: 4008,
} as const;

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/** The subprotocol the server speaks; a client may offer it in Sec-WebSocket-Protocol. */
export const PROTOCOL = 'chat.v1';
