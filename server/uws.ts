/**
 * uWebSockets.js, loaded here and only here, after its request-head limit is set.
 *
 * uWS keeps at most `UWS_HTTP_MAX_HEADERS_SIZE` bytes of a request head that arrives in more than
 * one TCP read (4 KB by default) and answers a longer one with 431. A browser's upgrade request
 * with cookies and a `bearer.<jwt>` subprotocol can pass 4 KB, and on a real network a head that
 * size often arrives in two reads: 16 KB holds every head a client of ours should send. The
 * variable is read by the native module when it loads, so the module is loaded on first use,
 * after the variable is set (a static import would be evaluated before any of our code); a value
 * already in the environment is kept.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';

/** The longest request head the gateway accepts, unless `UWS_HTTP_MAX_HEADERS_SIZE` says otherwise. */
export const DEFAULT_MAX_HEAD_BYTES = 16_384;

let loaded: typeof Uws | undefined;

/** The uWebSockets.js module. Throws (with uWS's own reason) when it has no binary for this platform and Node version. */
export function uws(): typeof Uws {
  if (loaded) return loaded;
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(DEFAULT_MAX_HEAD_BYTES);
  loaded = createRequire(import.meta.url)('uWebSockets.js') as typeof Uws;
  return loaded;
}

/** Null when uWebSockets.js loads here, else why not, for the start-up error. */
export function uwsProblem(): string | null {
  try {
    uws();
    return null;
  } catch (error) {
    return `uWebSockets.js cannot load on Node ${process.version} (${process.platform}/${process.arch}): ${(error as Error).message.split('\n')[0]}`;
  }
}
