/**
 * The server's own frames, encoded in one place and typed by protocol/frames.ts `ServerPayloads`:
 * a payload that does not match its frame type is a compile error. Thread events are not made
 * here: they are stored and published already encoded (see ../fanout/), and sent as they are.
 */
import type { ServerPayloads } from '../../protocol/frames.js';

/** A frame type the server sends that is not a thread event. */
export type ServerFrameType = keyof ServerPayloads;

/** `{type, id?, payload}` as JSON text; `id` echoes the request's, when it answers one. */
export function encodeFrame<T extends ServerFrameType>(type: T, payload: ServerPayloads[T], id?: string): string {
  return JSON.stringify(id === undefined ? { type, payload } : { type, id, payload });
}
