/** Small helpers for answering plain HTTP on uWS outside the route table (the WebSocket upgrade), safely after an await. */
import type { HttpResponse } from 'uWebSockets.js';
import { statusLine } from './http/reply.js';

/** Tracks whether the client went away; register before the first await. */
export function watchAborted(res: HttpResponse): { aborted: boolean } {
  const state = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  return state;
}

export function sendJson(
  res: HttpResponse,
  status: number,
  body: unknown,
  state?: { aborted: boolean },
  headers: Record<string, string> = {},
  /** A HEAD request: the same status and headers, no body. */
  head = false,
): void {
  if (state?.aborted) return;
  res.cork(() => {
    res
      .writeStatus(statusLine(status))
      .writeHeader('content-type', 'application/json')
      .writeHeader('cache-control', 'no-store');
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    if (head) res.endWithoutBody();
    else res.end(JSON.stringify(body));
  });
}
