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
