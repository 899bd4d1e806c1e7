/**
 * What a client does when its socket ends or its handshake is refused. A refusal reaches a client
 * in one of two forms, read here the same way:
 * - a close after the upgrade (browsers, and every client that offers the `chat.v1` subprotocol):
 *   an `error` frame, then close code 4001/4003/4008/4503 with the error code as the reason;
 * - a plain HTTP answer with a JSON body `{code, message, retry_after_ms?}` (401/403/429/503),
 *   which only non-browser clients can read (Node's `ws`: the `unexpected-response` event).
 * A socket that ends before the upgrade with neither is `connect_failed` (judgeBeforeUpgrade).
 */
import { CloseCodes, ErrorCodes, isErrorCode, parseRefusalReason } from '../codes.js';
import type { ErrorPayload } from '../frames.js';
import type { Refusal } from './types.js';

export type SocketEnd =
  | { kind: 'http'; status: number; body?: Partial<ErrorPayload> }
  /** `error`: the error frame the server sent just before closing, if any. */
  | { kind: 'close'; code: number; reason: string; error?: ErrorPayload };

export type Verdict =
  /** Reconnect after a backoff delay of at least `atLeastMs`, and resume. */
  | { action: 'reconnect'; code?: string; message?: string; atLeastMs?: number }
  /** Ask the token provider for a fresh token, then reconnect at once. */
  | { action: 'refresh'; code: string; message: string }
  /** Do not reconnect: a new connection with these credentials would be refused the same way. */
  | { action: 'stop'; code: string; message: string };

export function judge(end: SocketEnd): Verdict {
  return end.kind === 'http' ? judgeHttp(end.status, end.body ?? {}) : judgeClose(end.code, end.reason, end.error);
}

function judgeHttp(status: number, body: Partial<ErrorPayload>): Verdict {
  const code = typeof body.code === 'string' ? body.code : undefined;
  const message = typeof body.message === 'string' ? body.message : `The server refused the connection (HTTP ${status}).`;
  const retry = typeof body.retry_after_ms === 'number' ? body.retry_after_ms : undefined;
  if (status === 401) return code === 'token_expired' ? { action: 'refresh', code, message } : { action: 'stop', code: code ?? 'unauthenticated', message };
  if (status === 403) return { action: 'stop', code: code ?? 'forbidden', message };
  if (status === 429) return { action: 'reconnect', code: code ?? 'rate_limited', message, atLeastMs: retry ?? 1_000 };
  if (status >= 500) return { action: 'reconnect', code: code ?? 'unavailable', message, atLeastMs: retry };
  // 404, 400, 426: this URL is not a conversation socket; retrying it changes nothing.
  return { action: 'stop', code: code ?? 'not_found', message: `${message} Check the server URL.` };
}

function judgeClose(closeCode: number, reason: string, error: ErrorPayload | undefined): Verdict {
  const parsed = parseRefusalReason(reason);
  const code: string | undefined = error?.code ?? parsed?.code;
  const retry = error?.retry_after_ms ?? parsed?.retryAfterMs;
  const message = error?.message ?? (isErrorCode(code) ? ErrorCodes[code].message : reason);
  switch (closeCode) {
    case CloseCodes.unauthenticated:
      // `unauthenticated`: this token will never verify. Anything else (token_expired at exp, or a
      // reason this client does not know) is cured by a fresh token.
      return code === 'unauthenticated'
        ? { action: 'stop', code, message: message || 'The token was refused.' }
        : { action: 'refresh', code: code ?? 'token_expired', message: message || 'The token expired.' };
    case CloseCodes.forbidden:
      return { action: 'stop', code: code ?? 'forbidden', message: message || 'The server refused this connection.' };
    case CloseCodes.policy:
      return { action: 'reconnect', code: code ?? 'rate_limited', message, atLeastMs: retry ?? 5_000 };
    case CloseCodes.unavailable:
      return { action: 'reconnect', code: code ?? 'unavailable', message, atLeastMs: retry ?? 1_000 };
    default:
      // 1001 going away, 1006 a drop, 1011 a server failure, 1013 slow consumer, 1009 a frame too
      // large (not resent): reconnect and resume by seq.
      return { action: 'reconnect', code, message: message || undefined, atLeastMs: retry };
  }
}

/**
 * A socket that ended before the upgrade with no refusal to read: a browser reports only 1006 (no
 * reason, no status), so the client names the likely causes and keeps trying with backoff (a server
 * that is down comes back). `bearer`: the token rode in the subprotocol, so a request head over the
 * server's limit is one of them; `switched`: the next attempt sends the token the other way
 * (handshake.ts). An HTTP 431, which only Node's `ws` can read, says so for certain, and stops the
 * client when there is no other way to send the token.
 */
export function judgeBeforeUpgrade(end: SocketEnd, bearer: boolean, switched: boolean): Verdict {
  const next = switched ? ` The next attempt sends the token ${bearer ? 'as a ticket' : 'in the subprotocol'}.` : '';
  if (end.kind === 'http' && end.status === 431) {
    const message = `The request head was over the server's limit (HTTP 431).${next}`;
    return switched ? { action: 'reconnect', code: 'connect_failed', message } : { action: 'stop', code: 'connect_failed', message: `${message} Send ${bearer ? "the token by ticket (transport 'auto') or " : ''}fewer cookies.` };
  }
  const reason = end.kind === 'close' && end.reason ? ` (${end.reason})` : '';
  const head = bearer ? "; the request head, with the token in the subprotocol, was over the server's limit (16 KB by default)" : '';
  return {
    action: 'reconnect',
    code: 'connect_failed',
    message: `The connection closed before the WebSocket upgrade${reason}. Likely causes: the server is unreachable; a proxy does not pass WebSocket upgrades${head}.${next}`,
  };
}

/**
 * A token provider's error that asking again cannot cure: `status` 401/403 (the host's token
 * endpoint says "not signed in" / "not allowed") or `fatal: true`. Anything else is retried.
 */
export function fatalProviderError(error: unknown): Refusal | undefined {
  const { status, fatal, message } = (error ?? {}) as { status?: unknown; fatal?: unknown; message?: unknown };
  if (status !== 401 && status !== 403 && fatal !== true) return undefined;
  const text = typeof message === 'string' && message ? message : 'The token provider refused to give a token.';
  return { code: status === 403 ? 'forbidden' : 'unauthenticated', message: text, ...(typeof status === 'number' ? { httpStatus: status } : {}) };
}
