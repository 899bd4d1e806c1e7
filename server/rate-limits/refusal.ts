/** The `rate_limited` refusal every limit answers with, and how its wait is written. */
import { RequestError } from '../errors.js';

/** A `rate_limited` refusal whose message names the limit and says when to retry. */
export function rateLimited(what: string, retryAfterMs: number, advice?: string): RequestError {
  const ms = Math.max(1, Math.ceil(retryAfterMs));
  return new RequestError('rate_limited', `${what}. ${advice ?? `Retry in ${describeWait(ms)}.`}`, ms);
}

/** A wait as a person reads it, agreeing with `retry_after_ms`: `20 ms`, `1.5 s`, `12 s`. */
export function describeWait(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 10_000) return `${Math.ceil(ms / 100) / 10} s`;
  return `${Math.ceil(ms / 1000)} s`;
}

/** `Retry-After` (whole seconds, rounded up) for a wait in ms. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.ceil(Math.max(0, ms) / 1000));
}
