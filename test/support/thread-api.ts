/**
 * The thread operations behind one interface, over either transport: WebSocket frames (acks and
 * errors, schema-checked by TestClient) or the REST mirror (bodies schema-checked here, error
 * statuses checked by RestClient). A test written against `ThreadApi` asserts the same
 * expectations on both.
 */
import * as assert from 'uvu/assert';
import type { TestClient } from './client.js';
import { checkResult, type RestClient } from './rest-client.js';
import type { resultSchemas } from '../../protocol/resources.js';

export type Transport = 'ws' | 'rest';

/** An operation's answer: the ack payload / 2xx body, or the error's code. */
export interface Outcome {
  ok: boolean;
  body: any;
  code?: string;
  /** REST only. */
  status?: number;
}

export interface ThreadApi {
  transport: Transport;
  /** The code a request that breaks the schema gets on this transport. */
  invalidCode: 'invalid_frame' | 'invalid_request';
  create(input?: { title?: string; agent_id?: string }): Promise<Outcome>;
  list(input?: { cursor?: string; limit?: number; archived?: boolean }): Promise<Outcome>;
  get(threadId: string): Promise<Outcome>;
  history(threadId: string, input?: { before_seq?: number; limit?: number }): Promise<Outcome>;
  update(threadId: string, input: { title?: string; archived?: boolean }): Promise<Outcome>;
  remove(threadId: string): Promise<Outcome>;
  /** Posts a user message into the thread (WS message.send, REST POST .../messages). */
  send(threadId: string, content: string): Promise<Outcome>;
  cancel(runId: string): Promise<Outcome>;
  search(q: string, limit?: number): Promise<Outcome>;
  /** Waits for the run's agent_completed and returns its payload. */
  completed(threadId: string, runId: string): Promise<any>;
}

export function wsApi(client: TestClient): ThreadApi {
  const call = async (type: string, payload: object): Promise<Outcome> => {
    const frame = await client.request(type, payload);
    assert.ok(frame.type === 'ack' || frame.type === 'error', `${type} answered with ${frame.type}`);
    return frame.type === 'ack' ? { ok: true, body: frame.payload } : { ok: false, body: frame.payload, code: frame.payload.code };
  };
  return {
    transport: 'ws',
    invalidCode: 'invalid_frame',
    create: (input = {}) => call('thread.create', input),
    list: (input = {}) => call('thread.list', input),
    get: (thread_id) => call('thread.get', { thread_id }),
    history: (thread_id, input = {}) => call('thread.history', { thread_id, ...input }),
    update: (thread_id, input) => call('thread.update', { thread_id, ...input }),
    remove: (thread_id) => call('thread.delete', { thread_id }),
    send: (thread_id, content) => call('message.send', { thread_id, content }),
    cancel: (run_id) => call('run.cancel', { run_id }),
    search: (q, limit) => call('search', { q, ...(limit ? { limit } : {}) }),
    completed: async (_threadId, runId) => (await client.completed(runId)).payload,
  };
}

export function restApi(rest: RestClient): ThreadApi {
  const call = async (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    success: { status: number; schema: keyof typeof resultSchemas },
    body?: unknown,
  ): Promise<Outcome> => {
    const res = await rest.call(method, path, body);
    if (res.status >= 400) return { ok: false, body: res.body, code: res.body.code, status: res.status };
    assert.equal(res.status, success.status, `${method} ${path} answers ${success.status}`);
    checkResult(success.schema, res.body);
    return { ok: true, body: res.body, status: res.status };
  };
  const query = (params: Record<string, string | number | boolean | undefined>) => {
    const entries = Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]);
    return entries.length ? `?${new URLSearchParams(entries)}` : '';
  };
  return {
    transport: 'rest',
    invalidCode: 'invalid_request',
    create: (input = {}) => call('POST', '/v1/threads', { status: 201, schema: 'thread' }, input),
    list: (input = {}) => call('GET', `/v1/threads${query(input)}`, { status: 200, schema: 'threadList' }),
    get: (id) => call('GET', `/v1/threads/${encodeURIComponent(id)}`, { status: 200, schema: 'thread' }),
    history: (id, input = {}) =>
      call('GET', `/v1/threads/${encodeURIComponent(id)}/history${query(input)}`, { status: 200, schema: 'history' }),
    update: (id, input) => call('PATCH', `/v1/threads/${encodeURIComponent(id)}`, { status: 200, schema: 'thread' }, input),
    remove: (id) => call('DELETE', `/v1/threads/${encodeURIComponent(id)}`, { status: 200, schema: 'threadDeleted' }),
    send: (id, content) => call('POST', `/v1/threads/${encodeURIComponent(id)}/messages`, { status: 202, schema: 'sent' }, { content }),
    cancel: (runId) => call('POST', `/v1/runs/${encodeURIComponent(runId)}/cancel`, { status: 200, schema: 'cancelled' }),
    search: (q, limit) => call('GET', `/v1/search${query({ q, limit })}`, { status: 200, schema: 'search' }),
    completed: async (threadId, runId) => {
      const events = await rest.untilCompleted(threadId, runId);
      return events.find((e) => e.type === 'agent_completed' && e.payload.run_id === runId)!.payload;
    },
  };
}
