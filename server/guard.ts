/**
 * The one guard every uWS callback and every timer callback of the gateway runs behind. An
 * exception thrown inside a uWebSockets.js callback ends the whole process (gateway and, when
 * embedded, the worker with it); a bug or an input nobody foresaw must cost at most the one socket
 * or request concerned. The guard logs the error and lets the caller close only what it concerns.
 */
import type { Logger } from 'pino';

/**
 * `fn`, but an exception it throws (or a promise it returns that rejects) is logged as `what` and
 * handed to `recover` instead of escaping. `recover` itself is guarded too.
 */
export function guard<A extends unknown[]>(
  log: Logger,
  what: string,
  fn: (...args: A) => unknown,
  recover?: (error: unknown, ...args: A) => void,
): (...args: A) => void {
  const fail = (error: unknown, args: A) => {
    log.error({ err: error, where: what }, 'unexpected error; closing only what it concerns');
    try {
      recover?.(error, ...args);
    } catch (again) {
      log.error({ err: again, where: what }, 'recovering from an unexpected error failed too');
    }
  };
  return (...args: A) => {
    try {
      const result = fn(...args);
      if (result instanceof Promise) result.catch((error: unknown) => fail(error, args));
    } catch (error) {
      fail(error, args);
    }
  };
}
