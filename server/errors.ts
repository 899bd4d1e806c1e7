/**
 * Errors both sides share: the known refusal a request ends with (`RequestError`, rendered as an
 * `error` frame or a REST body with the code's status), the body they render to, and the test
 * that tells a dependency outage (retryable) from a bug.
 */
import { isRetryable, type ErrorCode } from '../protocol/codes.js';

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

/** Errors that mean a dependency is down (retryable), not a bug. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001', '08003'].includes(code ?? '') ||
    /Connection terminated|timeout exceeded when trying to connect|Connection is closed/i.test(String((error as Error)?.message))
  );
}

/** A statement cancelled by its time budget (statement_timeout): the request answers `unavailable`. */
export function isTimeoutError(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === '57014';
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
