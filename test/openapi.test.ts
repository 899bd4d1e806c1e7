/**
 * GET /v1/openapi.json, fetched from a real node: a valid OpenAPI 3.1 document by a third-party
 * validator (@readme/openapi-parser), generated from the route table (every route the node mounts,
 * nothing else), and true: a contract walk calls every operation on the node, at least one success
 * each and, for every operation that takes a token, a parameter or a body, at least one refusal,
 * and checks each answer's status, media type and body against what the document says of it
 * (ajv over the document's own schemas).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { validate } from '@readme/openapi-parser';
import pkg from '../package.json' with { type: 'json' };
import { buildWeb } from '../scripts/build-web.mjs';
import { resultSchemas, requestSchemas } from '../protocol/resources.js';
import { signToken } from '../server/auth.js';
import { routeTable } from '../server/rest/index.js';
import { TestClient } from './support/client.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor } from './support/wait.js';

const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

type Json = any;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Ctx extends StackCtx {
  doc: Json;
  admin: string;
  member: string;
}

const test = suite<Ctx>('openapi');
useStack(test, {
  backend: 'redis',
  // The walk makes a few dozen calls at once; the per-second REST limit is not what it checks.
  env: { RATE_LIMIT_REST_PER_SEC: '1000' },
  setup: async (ctx) => {
    // The bundles the web routes serve (a fresh checkout that skipped the build would answer 503).
    await buildWeb({ quiet: true, types: false });
    const res = await fetch(`${ctx.base}/v1/openapi.json`, { signal: AbortSignal.timeout(10_000) });
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    ctx.doc = await res.json();
    const sign = (sub: string, role?: string) =>
      signToken(ctx.stack.secret, { sub, workspace: 'contract', ttlSeconds: 3600, ...(role ? { extra: { role } } : {}) });
    ctx.admin = await sign('contract-admin', 'admin');
    ctx.member = await sign('contract-member');
  },
});

/** Every operation of the document: operationId → where it is. */
function operations(doc: Json): Map<string, { path: string; method: string; op: Json }> {
  const out = new Map<string, { path: string; method: string; op: Json }>();
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const method of Object.keys(item).filter((key) => METHODS.includes(key))) out.set(item[method].operationId, { path, method, op: item[method] });
  }
  return out;
}

test('a valid OpenAPI 3.1 document by @readme/openapi-parser, which refuses a broken one', async ({ doc }) => {
  assert.is(doc.openapi, '3.1.0');
  assert.is(doc.info.version, pkg.version);
  assert.equal(doc.servers, [{ url: '/', description: doc.servers[0].description }]);
  const result = await validate(structuredClone(doc));
  assert.ok(result.valid, JSON.stringify(result).slice(0, 2000));
  assert.equal(result.warnings, []);
  const broken = structuredClone(doc);
  broken.paths['/v1/threads'].get.responses = 'none';
  assert.not.ok((await validate(broken)).valid, 'the validator checks the document');
});

test('the document is the route table: the routes this node mounts, with their flags', async ({ doc, base }) => {
  const ops = operations(doc);
  // Served in embedded development mode only; this node has a configured secret.
  const mounted = routeTable.filter((route) => route.path !== '/dev/token');
  assert.equal([...ops.keys()].sort(), mounted.map((route) => route.operationId).sort());
  for (const route of mounted) {
    const { path, method, op } = ops.get(route.operationId)!;
    assert.is(path, route.path.replace(/:(\w+)/g, '{$1}'));
    assert.is(method, route.method);
    if (route.auth === 'bearer') {
      assert.is(op.security, undefined, `${route.operationId} uses the global bearer security`);
      for (const status of ['401', '429', '500', '503']) assert.ok(op.responses[status], `${route.operationId} documents ${status}`);
    } else if (route.path !== '/v1/ws') {
      assert.equal(op.security, [], `${route.operationId} needs no token`);
    }
    if (route.body) for (const status of ['400', '413']) assert.ok(op.responses[status], `${route.operationId} documents ${status}`);
  }
  assert.is((await fetch(`${base}/dev/token`)).status, 404, 'not mounted, not documented');
  // The protocol's own objects, not copies.
  assert.equal(doc.components.schemas.Thread, resultSchemas.thread);
  assert.equal(doc.components.schemas.ThreadCreateRequest, requestSchemas['thread.create']);
  const list = ops.get('listThreads')!.op.parameters.find((p: Json) => p.name === 'limit');
  assert.equal(list.schema, { type: 'integer', minimum: 1, maximum: 100, default: 20, description: 'Threads per page.' });
});

test('contract: every operation answers as documented, successes and refusals', async (ctx) => {
  const { doc, base, admin, member } = ctx;
  const ops = operations(doc);
  const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
  addFormats(ajv, ['date-time']);
  ajv.addSchema(doc, 'openapi.json');
  const seen = new Map<string, Set<number>>();

  /** Checks one answer of `operationId` against the document and records it. */
  const check = (operationId: string, status: number, type: string | null, body: unknown, label: string) => {
    const entry = ops.get(operationId);
    assert.ok(entry, `${operationId} is documented`);
    const response = entry!.op.responses[String(status)];
    assert.ok(response, `${label}: ${status} is documented for ${operationId}: ${JSON.stringify(body ?? null).slice(0, 300)}`);
    if (response.content) {
      const media = (type ?? '').split(';')[0]!.trim();
      assert.ok(media in response.content, `${label}: ${media} is a documented media type of ${status} (${Object.keys(response.content)})`);
      if (media === 'application/json') {
        const pointer = `#/paths/${entry!.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${entry!.method}/responses/${status}/content/application~1json/schema`;
        const validateBody = ajv.getSchema(`openapi.json${pointer}`)!;
        assert.ok(validateBody(body), `${label}: ${ajv.errorsText(validateBody.errors)}\n${JSON.stringify(body).slice(0, 400)}`);
      }
    }
    if (!seen.has(operationId)) seen.set(operationId, new Set());
    seen.get(operationId)!.add(status);
  };

  /** One call; `expect` the status (or one of them). */
  const call = async (operationId: string, method: string, path: string, expect: number | number[], options: { token?: string; body?: unknown; raw?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, body: payload, signal: AbortSignal.timeout(15_000) });
    const type = res.headers.get('content-type');
    const text = await res.text();
    const body = type?.startsWith('application/json') ? JSON.parse(text) : text;
    const label = `${method} ${path}`;
    assert.ok([expect].flat().includes(res.status), `${label}: ${res.status} ${text.slice(0, 300)}`);
    check(operationId, res.status, type, body, label);
    return body;
  };

  // ---- threads
  const thread = await call('createThread', 'POST', '/v1/threads', 201, { token: admin, body: { title: 'contract' } });
  await call('createThread', 'POST', '/v1/threads', 400, { token: admin, body: { colour: 'red' } });
  await call('createThread', 'POST', '/v1/threads', 413, { token: admin, raw: JSON.stringify({ title: 'x'.repeat(70_000) }) });
  await call('createThread', 'POST', '/v1/threads', 401, { body: { title: 'anonymous' } });
  await call('listThreads', 'GET', '/v1/threads?limit=5', 200, { token: admin });
  const limit = await call('listThreads', 'GET', '/v1/threads?limit=0', 400, { token: admin });
  assert.is(limit.message, 'query.limit must be a whole number from 1 to 100');
  const archived = await call('listThreads', 'GET', '/v1/threads?archived=yes', 400, { token: admin });
  assert.is(archived.message, 'query.archived must be true or false');
  await call('getThread', 'GET', `/v1/threads/${thread.id}`, 200, { token: admin });
  await call('getThread', 'GET', '/v1/threads/t_missing', 404, { token: admin });
  await call('getThread', 'GET', '/v1/threads/not%20an%20id', 400, { token: admin });
  await call('updateThread', 'PATCH', `/v1/threads/${thread.id}`, 200, { token: admin, body: { title: 'renamed' } });
  await call('updateThread', 'PATCH', `/v1/threads/${thread.id}`, 400, { token: admin, body: { title: '' } });
  await call('updateThread', 'PATCH', '/v1/threads/t_missing', 404, { token: admin, body: {} });
  await call('getThreadHistory', 'GET', `/v1/threads/${thread.id}/history`, 200, { token: admin });
  await call('getThreadHistory', 'GET', `/v1/threads/${thread.id}/history?before_seq=0`, 400, { token: admin });
  await call('getThreadHistory', 'GET', '/v1/threads/t_missing/history', 404, { token: admin });

  // ---- messages, events, runs
  const sent = await call('postMessage', 'POST', `/v1/threads/${thread.id}/messages`, 202, { token: admin, body: { content: 'contract [[words:200]] [[delay:20]]' } });
  await call('postMessage', 'POST', `/v1/threads/${thread.id}/messages`, 400, { token: admin, body: { content: '' } });
  await call('postMessage', 'POST', '/v1/threads/t_missing/messages', 404, { token: admin, body: { content: 'hello' } });
  await call('pollThreadEvents', 'GET', `/v1/threads/${thread.id}/events?after_seq=0`, 200, { token: admin });
  await call('pollThreadEvents', 'GET', `/v1/threads/${thread.id}/events?wait_ms=30001`, 400, { token: admin });
  await call('cancelRun', 'POST', `/v1/runs/${sent.run_id}/cancel`, 200, { token: admin });
  await call('cancelRun', 'POST', '/v1/runs/r_missing/cancel', 404, { token: admin });
  await call('getRun', 'GET', `/v1/runs/${sent.run_id}`, 200, { token: admin });
  await call('getRun', 'GET', '/v1/runs/r_missing', 404, { token: admin });
  // A run that waits for an approval, answered once.
  await call('createAgent', 'POST', '/v1/agents', 400, { token: admin, body: { name: 'Unguarded', tools: [], require_approval: ['calculator'] } });
  const guarded = await call('createAgent', 'POST', '/v1/agents', 201, { token: admin, body: { name: 'Guarded', tools: ['calculator'], require_approval: ['calculator'] } });
  const guardedThread = await call('createThread', 'POST', '/v1/threads', 201, { token: admin, body: { agent_id: guarded.id } });
  const asked = await call('postMessage', 'POST', `/v1/threads/${guardedThread.id}/messages`, 202, { token: admin, body: { content: 'calculate 2*3' } });
  let run: any;
  await waitFor(async () => (run = await call('getRun', 'GET', `/v1/runs/${asked.run_id}`, 200, { token: admin })).status === 'waiting', 15_000, 'the run waits');
  const approval = { tool_call_id: run.pending[0].tool_call_id, approved: true };
  await call('approveToolCall', 'POST', `/v1/runs/${asked.run_id}/approvals`, 200, { token: admin, body: approval });
  await call('approveToolCall', 'POST', `/v1/runs/${asked.run_id}/approvals`, 409, { token: admin, body: approval });
  await call('approveToolCall', 'POST', '/v1/runs/r_missing/approvals', 404, { token: admin, body: approval });
  await call('approveToolCall', 'POST', `/v1/runs/${asked.run_id}/approvals`, 400, { token: admin, body: { approved: true } });

  // ---- the AI SDK chat (a chat id names a thread, created on first use)
  const chat = { id: `chat-contract-${sent.run_id}`, trigger: 'submit-message' };
  const said = { id: 'contract-u1', role: 'user', parts: [{ type: 'text', text: 'contract [[words:3]]' }] };
  await call('aiSdkChat', 'POST', '/v1/ai-sdk/chat', 200, { token: admin, body: { ...chat, messages: [said] } });
  await call('aiSdkChat', 'POST', '/v1/ai-sdk/chat', 400, { token: admin, body: { ...chat, messages: [] } });
  await call('aiSdkResumeStream', 'GET', `/v1/ai-sdk/chat/${chat.id}/stream`, 204, { token: admin });
  await call('aiSdkResumeStream', 'GET', '/v1/ai-sdk/chat/not%20an%20id/stream', 400, { token: admin });
  await call('aiSdkStop', 'POST', `/v1/ai-sdk/chat/${chat.id}/stop`, 204, { token: admin });
  await call('aiSdkStop', 'POST', '/v1/ai-sdk/chat/t_missing/stop', 404, { token: admin });

  // ---- AG-UI (a thread id names a thread, created on first use)
  const aguiInput = { threadId: `agui-contract-${sent.run_id}`, runId: 'contract', messages: [{ id: 'contract-a1', role: 'user', content: 'contract [[words:3]]' }] };
  await call('aguiRun', 'POST', '/v1/agui', 200, { token: admin, body: aguiInput });
  await call('aguiRun', 'POST', '/v1/agui', 400, { token: admin, body: { ...aguiInput, messages: undefined } });
  await call('aguiRun', 'POST', '/v1/agui', 404, { token: admin, body: { ...aguiInput, resume: [{ interruptId: 'r_missing:call', status: 'resolved' }] } });

  // ---- search, tickets
  await call('searchMessages', 'GET', '/v1/search?q=contract', 200, { token: admin });
  const blank = await call('searchMessages', 'GET', '/v1/search?q=%20%20', 400, { token: admin });
  assert.is(blank.message, 'query.q must not be blank');
  await call('searchMessages', 'GET', '/v1/search', 400, { token: admin });
  await call('createWsTicket', 'POST', '/v1/ws-ticket', 201, { token: admin });
  await call('createWsTicket', 'POST', '/v1/ws-ticket', 401, { token: 'not-a-token' });

  // ---- agents
  await call('listAgents', 'GET', '/v1/agents', 200, { token: member });
  await call('listAgents', 'GET', '/v1/agents', 401);
  const agent = await call('createAgent', 'POST', '/v1/agents', 201, { token: admin, body: { name: 'Contract bot' } });
  await call('createAgent', 'POST', '/v1/agents', 403, { token: member, body: { name: 'Not mine' } });
  await call('getAgent', 'GET', `/v1/agents/${agent.id}`, 200, { token: member });
  await call('getAgent', 'GET', '/v1/agents/a_missing', 404, { token: member });
  await call('updateAgent', 'PATCH', `/v1/agents/${agent.id}`, 200, { token: admin, body: { name: 'Renamed bot' } });
  await call('updateAgent', 'PATCH', `/v1/agents/${agent.id}`, 403, { token: member, body: { name: 'Taken' } });
  await call('deleteAgent', 'DELETE', `/v1/agents/${agent.id}`, 403, { token: member });
  await call('deleteAgent', 'DELETE', `/v1/agents/${agent.id}`, 200, { token: admin });
  await call('deleteThread', 'DELETE', `/v1/threads/${thread.id}`, 200, { token: admin });
  await call('deleteThread', 'DELETE', `/v1/threads/${thread.id}`, 404, { token: admin });

  // ---- the node's own routes and the web routes
  for (const [operationId, path] of [['health', '/health'], ['live', '/live'], ['ready', '/ready'], ['metrics', '/metrics'], ['getOpenApi', '/v1/openapi.json'], ['getAsyncApi', '/v1/asyncapi.json']]) {
    await call(operationId!, 'GET', path!, 200);
  }
  await call('getSchema', 'GET', '/v1/schemas/client.message.send.json', 200);
  await call('getSchema', 'GET', '/v1/schemas/nothing.json', 404);
  await call('getSchema', 'GET', '/v1/schemas/nothing', 400);
  for (const route of routeTable.filter((r) => r.tags.includes('web') && r.path !== '/dev/token')) {
    await call(route.operationId, 'GET', route.path, 200);
  }

  // ---- the socket: 426 without an upgrade, 401 without a token, 101 with one
  await call('openWebSocket', 'GET', '/v1/ws', 426);
  const refused = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
    const ws = new WebSocket(ctx.url);
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: text }));
    });
    ws.on('open', () => reject(new Error('opened without a token')));
    ws.on('error', () => undefined);
  });
  assert.is(refused.status, 401);
  check('openWebSocket', 401, refused.type ?? null, JSON.parse(refused.body), 'upgrade without a token');
  const client = await TestClient.connect(ctx.url, { token: admin });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  check('openWebSocket', 101, null, undefined, 'upgrade');

  // Coverage: a success for every operation; a refusal for every one that takes a token or an input.
  for (const [operationId, { op }] of ops) {
    const statuses = [...(seen.get(operationId) ?? [])];
    assert.ok(statuses.some((s) => s < 400), `${operationId}: no success was checked (${statuses})`);
    const takesInput = op.security === undefined || op.parameters?.length > 0 || op.requestBody;
    if (takesInput) assert.ok(statuses.some((s) => s >= 400), `${operationId}: no refusal was checked (${statuses})`);
  }
});

test('HEAD on a GET route: the GET\'s status and headers, no body', async ({ base, admin }) => {
  for (const [path, token] of [['/v1/threads', admin], ['/v1/openapi.json', undefined], ['/metrics', undefined]] as const) {
    const get = await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const head = await fetch(base + path, { method: 'HEAD', headers: token ? { authorization: `Bearer ${token}` } : {} });
    await get.arrayBuffer();
    assert.is(head.status, get.status, path);
    assert.is(head.headers.get('content-type'), get.headers.get('content-type'), path);
    assert.is(await head.text(), '', path);
  }
  const anonymous = await fetch(`${base}/v1/threads`, { method: 'HEAD' });
  assert.is(anonymous.status, 401);
});

test.run();
