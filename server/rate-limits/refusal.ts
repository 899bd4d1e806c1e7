/** The `rate_limited` refusals every limit answers with, and how their wait is written. */
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

/** How long a client refused for open sockets or active runs should wait: a hint, not a window. */
export const RETRY_HINT_MS = 1000;

/** The runs-per-user refusal (the count itself is in db/turns.repository.ts). */
export function tooManyRuns(limit: number): RequestError {
  return rateLimited(
    `Too many active runs: at most ${limit} queued or running per user`,
    RETRY_HINT_MS,
    `Retry in ${RETRY_HINT_MS / 1000} s, once one has finished (or cancel one).`,
  );
}

/** The open-sockets-per-user refusal of a handshake. */
export function tooManyConnections(limit: number): RequestError {
  return rateLimited(`Too many open connections: at most ${limit} per user`, RETRY_HINT_MS, `Close one, or retry in ${RETRY_HINT_MS / 1000} s.`);
}

/** The requests-in-flight refusal: the user's slots are taken and too many already wait for one. */
export function tooManyInFlight(limit: number): RequestError {
  return rateLimited(`Too many requests at once: at most ${limit} run at a time per user, and a few more may wait`, 250);
}

/** The frames-per-second refusal. */
export function tooManyFrames(limit: number, retryAfterMs: number): RequestError {
  return rateLimited(`Too many frames: at most ${limit} per second on one connection`, retryAfterMs);
}
