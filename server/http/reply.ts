/**
 * Writing one answer on uWS: status line, headers, body, corked (an answer after an await must be),
 * once (a second write or one after the client left is dropped), with no body for HEAD.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { httpStatus, type ErrorCode } from '../../protocol/codes.js';
import { errorBody } from '../errors.js';
import { retryAfterSeconds } from '../rate-limits/index.js';
import { JSON_TYPE, type Reply } from './route.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 426: 'Upgrade Required',
  429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}

/** One request's answer state: at most one answer, none once the client has gone. */
export class Exchange {
  /** Set when the client went away or the answer was written. */
  done = false;
  readonly controller = new AbortController();

  constructor(
    readonly res: HttpResponse,
    /** A HEAD request: the same status and headers, no body. */
    readonly head: boolean,
    /** Headers every answer of the route carries (CORS). */
    readonly common: Record<string, string>,
  ) {
    res.onAborted(() => {
      this.done = true;
      this.controller.abort();
    });
  }

  /** Writes a JSON or raw reply (a stream reply is written by ./sse.ts). */
  write(reply: Exclude<Reply, { stream: unknown }>): void {
    if (this.done) return;
    this.done = true;
    const { res } = this;
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      for (const [name, value] of Object.entries(this.common)) res.writeHeader(name, value);
      const raw = 'raw' in reply;
      if (!raw) res.writeHeader('cache-control', 'no-store');
      for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value);
      if (reply.status === 204) {
        res.end();
        return;
      }
      res.writeHeader('content-type', raw ? reply.type : JSON_TYPE);
      if (this.head) res.endWithoutBody();
      else res.end(raw ? reply.raw : JSON.stringify(reply.body));
    });
  }

  /** An error answer: the code's status, `{code, message, retryable, retry_after_ms?}`, Retry-After in seconds. */
  fail(code: ErrorCode, message: string, retryAfterMs?: number, details?: { last_seq?: number }): void {
    const headers: Record<string, string> = {};
    // 429 and 503 say when to come back in whole seconds too, for HTTP clients that honour it.
    if (retryAfterMs !== undefined) {
      headers['retry-after'] = retryAfterSeconds(retryAfterMs);
      if (this.common['access-control-allow-origin']) headers['access-control-expose-headers'] = 'retry-after';
    }
    this.write({ status: httpStatus(code), body: errorBody(code, message, retryAfterMs, details), headers });
  }
}
