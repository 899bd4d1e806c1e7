/**
 * The gateway's errors: the known refusal a request ends with (`RequestError`, rendered as an
 * `error` frame or a REST body with the code's status), the body they render to, and what an
 * unexpected failure tells the client (errors/backing-services.ts tells an outage from a bug).
 */
import { isRetryable, type ErrorCode } from '../protocol/codes.js';
import { isConnectionError, isTimeoutError } from '../errors/backing-services.js';

/** A known, expected refusal: rendered to the client as an `error` frame (or REST body) with this code. */
export class RequestError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly retryAfterMs?: number, readonly details?: { last_seq?: number }) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The body of an `error` frame and of a REST error: `{code, message, retryable, retry_after_ms?}`. */
export function errorBody(code: ErrorCode, message: string, retryAfterMs?: number, details?: { last_seq?: number }) {
  return {
    code,
    message,
    retryable: isRetryable(code),
    ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }),
    ...details,
  };
}

/**
 * What an unexpected failure of a request tells the client: `unavailable` (with a retry hint) when a
 * dependency is down or the request ran out of database time, else an opaque `internal_error`
 * (the details stay in the server log).
 */
export function classifyFailure(error: unknown): RequestError {
  if (error instanceof RequestError) return error;
  if (isConnectionError(error)) return new RequestError('unavailable', 'A backing service is unreachable; retry shortly.', 1000);
  if (isTimeoutError(error)) return new RequestError('unavailable', 'The request ran out of database time (the service is busy); retry shortly.', 1000);
  return new RequestError('internal_error', 'Internal server error.');
}
