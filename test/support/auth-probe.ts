/**
 * Presents a token the ways a client can and reports every answer in one shape: the upgrade
 * answered over HTTP (no `chat.v1`; the token in `Authorization`, or in `?access_token=` for
 * `query`), the upgrade answered by a close (a browser offering `chat.v1, bearer.<jwt>`), and a
 * REST call (GET /v1/threads). Each has its own deadline.
 */
import WebSocket from 'ws';
import { parseRefusalReason } from '../../protocol/codes.js';
import { rest } from './rest-client.js';
import { within } from './wait.js';

export type Form = 'upgrade' | 'query' | 'close' | 'rest';
export const FORMS: Form[] = ['upgrade', 'close', 'rest'];

export interface Answer {
  form: Form;
  accepted: boolean;
  /** The HTTP status, or for a close the status of its code (4001: 401, 4503: 503). */
  status: number;
  code?: string;
  message?: string;
  retryable?: boolean;
  /** `retry_after_ms` of the body or error frame. */
  retryAfterMs?: number;
  /** The Retry-After header (upgrade and REST). */
  retryAfter?: string;
  closeCode?: number;
  closeReason?: string;
  /** session.ready's user and workspace (upgrade and close forms). */
  userId?: string;
  workspaceId?: string;
}

const CLOSE_STATUS: Record<number, number> = { 4001: 401, 4003: 403, 4008: 429, 4503: 503 };

/** `port` is the gateway's; one attempt, answered within `timeoutMs`. */
export function present(port: number, form: Form, token: string, timeoutMs = 5_000): Promise<Answer> {
  if (form === 'rest') return presentRest(port, token, timeoutMs);
  return within(presentSocket(port, form, token), timeoutMs, `a ${form} answer`);
}

async function presentRest(port: number, token: string, timeoutMs: number): Promise<Answer> {
  const res = await rest(`http://127.0.0.1:${port}`, 'GET', '/v1/threads', { token, timeoutMs });
  if (res.status === 200) return { form: 'rest', accepted: true, status: 200 };
  return {
    form: 'rest',
    accepted: false,
    status: res.status,
    code: res.body.code,
    message: res.body.message,
    retryable: res.body.retryable,
    retryAfterMs: res.body.retry_after_ms,
    retryAfter: res.headers.get('retry-after') ?? undefined,
  };
}

function presentSocket(port: number, form: Exclude<Form, 'rest'>, token: string): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const url = `ws://127.0.0.1:${port}/v1/ws`;
    const ws = form === 'close'
      ? new WebSocket(url, ['chat.v1', `bearer.${token}`])
      : form === 'query'
        ? new WebSocket(`${url}?access_token=${encodeURIComponent(token)}`)
        : new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    let error: { code: string; message: string; retryable: boolean; retry_after_ms?: number } | undefined;
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'session.ready') {
        ws.terminate();
        resolve({ form, accepted: true, status: 101, userId: frame.payload.user_id, workspaceId: frame.payload.workspace_id });
      } else if (frame.type === 'error') {
        error = frame.payload;
      }
    });
    ws.once('close', (closeCode, buffer) => {
      const closeReason = buffer.toString();
      const reason = parseRefusalReason(closeReason);
      resolve({
        form,
        accepted: false,
        status: CLOSE_STATUS[closeCode] ?? 0,
        code: error?.code,
        message: error?.message,
        retryable: error?.retryable,
        retryAfterMs: error?.retry_after_ms ?? reason?.retryAfterMs,
        closeCode,
        closeReason,
      });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        ws.terminate();
        const body = JSON.parse(text);
        resolve({
          form,
          accepted: false,
          status: res.statusCode ?? 0,
          code: body.code,
          message: body.message,
          retryable: body.retryable,
          retryAfterMs: body.retry_after_ms,
          retryAfter: res.headers['retry-after'] as string | undefined,
        });
      });
    });
    ws.once('error', (err) => {
      // An 'unexpected-response' is answered above; anything else is a failure of the test's socket.
      if (ws.readyState !== WebSocket.CLOSED) reject(err);
    });
  });
}
