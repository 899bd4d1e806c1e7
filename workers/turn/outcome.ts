/**
 * How a turn ended: the one place that turns a failure into the run's outcome (and the code
 * clients see in `agent_completed.error`), and that tells a provider's failure (which counts
 * against the circuit breaker) from anything else.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { Logger } from 'pino';
import type { RunOutcome } from '../../db/schema.js';
import { RunErrorCodes, type RunErrorCode } from '../../protocol/codes.js';

/** A run failure with the code clients see in `agent_completed.error`. */
export class RunFailure extends Error {
  constructor(readonly code: RunErrorCode, message: string) {
    super(message);
    this.name = 'RunFailure';
  }
}

/** This attempt handed its run back on shutdown; a takeover job continues it elsewhere. */
export class Released extends Error {
  constructor() {
    super('run released on shutdown');
    this.name = 'Released';
  }
}

/** What counts against the provider: 5xx/429 (after the SDK's retries), connection errors, timeouts. */
export function isProviderFailure(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof APIConnectionError) return true; // includes APIConnectionTimeoutError
  if (error instanceof APIError) return error.status === undefined || error.status === 429 || error.status >= 500;
  return isStreamCut(error);
}

/**
 * A response body that ends before the stream does (the connection dropped mid-answer). undici
 * reports it as a TypeError('terminated') whose cause is the socket error; the SDK passes it on.
 */
function isStreamCut(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'terminated';
}

/** The one place that decides how a failed turn ends. */
export function classify(error: unknown, signal: AbortSignal, cancelled: AbortSignal, log: Logger): RunOutcome {
  if (cancelled.aborted) return { status: 'cancelled' };
  // Aborted, but not by the user: this worker is shutting down past its grace period.
  if (signal.aborted || error instanceof APIUserAbortError) {
    return { status: 'failed', error: { code: 'worker_lost', message: 'The worker stopped during this turn; send the message again.' } };
  }
  if (error instanceof RunFailure) return { status: 'failed', error: { code: error.code, message: error.message } };
  if (error instanceof APIConnectionTimeoutError) {
    return { status: 'failed', error: { code: 'llm_timeout', message: RunErrorCodes.llm_timeout } };
  }
  if (error instanceof APIError) {
    log.warn({ status: error.status, err: error }, 'LLM call failed');
    const detail = error.status ? ` (HTTP ${error.status})` : '';
    return { status: 'failed', error: { code: 'llm_error', message: `${RunErrorCodes.llm_error}${detail}` } };
  }
  if (isStreamCut(error)) {
    log.warn({ err: error }, 'LLM stream ended early');
    return { status: 'failed', error: { code: 'llm_error', message: `${RunErrorCodes.llm_error} (the answer stream was cut off)` } };
  }
  log.error({ err: error }, 'turn failed');
  return { status: 'failed', error: { code: 'internal_error', message: RunErrorCodes.internal_error } };
}
