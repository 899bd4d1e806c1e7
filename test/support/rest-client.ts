/**
 * REST calls for the tests: `rest()` for one call, `RestClient` for a caller with a fixed token.
 * Every call adds the bearer token, has its own deadline (uvu has no timeouts), reports how long it
 * took (for long-poll timing assertions), parses the JSON body, and checks error bodies against the
 * protocol's error schema and status mapping.
 */
import type { ValidateFunction } from 'ajv';
import { ajv } from '../../protocol/validate.js';
import { resultSchemas } from '../../protocol/resources.js';
import { httpStatus } from '../../protocol/codes.js';
import type { ErrorCode } from '../../protocol/codes.js';
import type { RunningNode } from '../../app/node.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RestResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
  /** Wall-clock time from sending the request to reading the whole body. */
  ms: number;
}

export interface RestOptions {
  token?: string;
  body?: unknown;
  /** The call's deadline (default 15 s). */
  timeoutMs?: number;
}

export function restBase(node: RunningNode): string {
  return `http://127.0.0.1:${node.gateway!.port}`;
}

const validators = new Map<string, ValidateFunction>();

/** Throws unless `body` matches the named result schema (protocol/resources.ts). */
export function checkResult(name: keyof typeof resultSchemas, body: unknown): void {
  let validate = validators.get(name);
  if (!validate) {
    validate = ajv.compile(resultSchemas[name]);
    validators.set(name, validate);
  }
  if (!validate(body)) {
    throw new Error(`body is not a valid ${name}: ${JSON.stringify(validate.errors?.[0])}: ${JSON.stringify(body).slice(0, 300)}`);
  }
}

/** One timed call to `base + path`. */
export async function rest<T = any>(base: string, method: Method, path: string, options: RestOptions = {}): Promise<RestResponse<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  const res = await fetch(base + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  let parsed: any;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path}: HTTP ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  // Every failure is `{code, message}` with the status its code maps to.
  if (res.status >= 400) {
    checkResult('error', parsed);
    const expected = httpStatus(parsed.code as ErrorCode);
    if (expected !== res.status) {
      throw new Error(`${method} ${path}: HTTP ${res.status} for code ${parsed.code} (expected ${expected})`);
    }
  }
  return { status: res.status, body: parsed as T, headers: res.headers, ms };
}

export class RestClient {
  constructor(readonly baseUrl: string, readonly token?: string) {}

  call<T = any>(method: Method, path: string, body?: unknown, timeoutMs = 10_000): Promise<RestResponse<T>> {
    return rest<T>(this.baseUrl, method, path, { token: this.token, body, timeoutMs });
  }

  get<T = any>(path: string, timeoutMs?: number) {
    return this.call<T>('GET', path, undefined, timeoutMs);
  }
  post<T = any>(path: string, body?: unknown, timeoutMs?: number) {
    return this.call<T>('POST', path, body, timeoutMs);
  }
  patch<T = any>(path: string, body?: unknown, timeoutMs?: number) {
    return this.call<T>('PATCH', path, body, timeoutMs);
  }
  del<T = any>(path: string, timeoutMs?: number) {
    return this.call<T>('DELETE', path, undefined, timeoutMs);
  }

  /**
   * Long-polls GET /v1/threads/:id/events from `afterSeq` until the run's agent_completed arrives
   * (or `timeoutMs` passes); returns every event read, oldest first.
   */
  async untilCompleted(threadId: string, runId: string, afterSeq = 0, timeoutMs = 15_000): Promise<Array<{ type: string; payload: any }>> {
    const deadline = Date.now() + timeoutMs;
    const events: Array<{ type: string; payload: any }> = [];
    let after = afterSeq;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for run ${runId} to complete over REST`);
      const wait = Math.max(0, Math.min(5_000, left - 500));
      const res = await this.get(`/v1/threads/${threadId}/events?after_seq=${after}&wait_ms=${wait}`, wait + 5_000);
      if (res.status !== 200) throw new Error(`events long-poll: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      checkResult('events', res.body);
      events.push(...res.body.events);
      after = res.body.last_seq;
      if (events.some((e) => e.type === 'agent_completed' && e.payload.run_id === runId)) return events;
    }
  }
}
