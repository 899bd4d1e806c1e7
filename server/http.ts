/** Small helpers for answering plain HTTP on uWS, safely after an await. */
import type { HttpResponse } from 'uWebSockets.js';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden',
  404: '404 Not Found', 405: '405 Method Not Allowed', 409: '409 Conflict', 426: '426 Upgrade Required', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

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
      .writeStatus(STATUS_TEXT[status] ?? `${status} Status`)
      .writeHeader('content-type', 'application/json')
      .writeHeader('cache-control', 'no-store');
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    if (head) res.endWithoutBody();
    else res.end(JSON.stringify(body));
  });
}
