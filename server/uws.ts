/**
 * uWebSockets.js, loaded here and only here, after its request-head limit is set.
 *
 * uWS keeps at most `UWS_HTTP_MAX_HEADERS_SIZE` bytes of a request head that arrives in more than
 * one TCP read (4 KB by default) and answers a longer one with 431. A browser's upgrade request
 * with cookies and a `bearer.<jwt>` subprotocol can pass 4 KB, and on a real network a head that
 * size often arrives in two reads: 16 KB holds every head a client of ours should send. The
 * variable is read by the native module when it loads, so it is set before the require below (a
 * static import would be hoisted above this code); a value already in the environment is kept.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';

/** The longest request head the gateway accepts, unless `UWS_HTTP_MAX_HEADERS_SIZE` says otherwise. */
export const DEFAULT_MAX_HEAD_BYTES = 16_384;

process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(DEFAULT_MAX_HEAD_BYTES);

const uWS = createRequire(import.meta.url)('uWebSockets.js') as typeof Uws;
export default uWS;
