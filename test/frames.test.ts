import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient, type Frame } from './support/client.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { signToken } from '../server/auth.js';
import { within as deadline } from './support/wait.js';

// uvu has no timeouts: every wait below has its own deadline.
const DEADLINE_MS = 5_000;
const within = <T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> => deadline(p, ms, what);

function httpGet(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string; headers: http.IncomingHttpHeaders }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    }),
    `${method} ${path}`,
  );
}

interface Ctx extends StackCtx {
  /** The token the shared client connected with. */
  token: string;
  /** One connection that every bad frame below goes through. */
  client: TestClient;
  /** Raw text of every frame the shared client received after session.ready. */
  raw: string[];
  /** Tokens sent inside frames; no answer may contain any of them. */
  secrets: string[];
}

const test = suite<Ctx>('bad frames and limits');

useStack(test, {
  // This suite sends many bad frames on one socket on purpose; the flood limit has its own test (hostile).
  env: { BAD_FRAME_LIMIT: '1000' },
  setup: async (ctx) => {
    ctx.token = await ctx.stack.token('framer', 'acme');
    ctx.secrets = [ctx.token];
    ctx.raw = [];
    ctx.client = await TestClient.connect(ctx.url, { token: ctx.token });
    ctx.client.ws.on('message', (data) => ctx.raw.push(String(data)));
    await ctx.client.next((f) => f.type === 'session.ready', DEADLINE_MS);
  },
  teardown: (ctx) => ctx.client.close(),
});

let counter = 0;
/** Frame ids for hand-made frames; never of the `r<n>` form TestClient.request uses. */
const nextId = (prefix: string) => `${prefix}-${++counter}`;

/** Proves the connection still answers: a ping gets a pong carrying its id. */
async function assertAlive(client: TestClient): Promise<Frame> {
  const id = nextId('ping');
  const from = client.frames.length;
  client.send({ type: 'ping', id, payload: {} });
  const pong = await client.next((f) => f.type === 'pong' && f.id === id, DEADLINE_MS, from);
  assert.equal(pong.payload, {});
  return pong;
}

/**
 * Sends one bad frame, waits for its `error`, then a ping/pong. Between the two there must be
 * exactly the one error and the pong: no second answer, no close.
 */
async function expectError(
  client: TestClient,
  data: string | Buffer,
  expected: { code: string; id?: string; message?: string | RegExp },
): Promise<Frame> {
  const from = client.frames.length;
  if (typeof data === 'string') client.ws.send(data);
  else client.ws.send(data, { binary: true });
  const error = await client.next((f) => f.type === 'error', DEADLINE_MS, from);
  assert.is(error.payload.code, expected.code, `code (message: ${error.payload.message})`);
  assert.is(error.id, expected.id, 'the error carries the frame id exactly when it had a usable one');
  assert.type(error.payload.message, 'string');
  if (typeof expected.message === 'string') assert.is(error.payload.message, expected.message);
  else if (expected.message) assert.match(error.payload.message, expected.message);
  assert.is(error.payload.retry_after_ms, undefined, 'a bad frame is not retryable as is');
  const pong = await assertAlive(client);
  assert.equal(
    client.frames.slice(from).map((f) => f.type),
    ['error', 'pong'],
    'one error for the bad frame, then the pong',
  );
  assert.is(client.frames.indexOf(pong), client.frames.length - 1);
  assert.is(client.closeCode, undefined, 'the socket stays open');
  return error;
}

test('text that is not JSON: invalid_frame, and the connection keeps working', async (ctx) => {
  for (const text of ['not json', '{"type":"ping",', '', '\u0000', 'ping']) {
    await expectError(ctx.client, text, { code: 'invalid_frame', message: 'The frame is not valid JSON.' });
  }
});

test('JSON that is not an object: invalid_frame', async (ctx) => {
  for (const text of ['[{"type":"ping","id":"x","payload":{}}]', '[]', '"ping"', '42', 'null', 'true']) {
    await expectError(ctx.client, text, { code: 'invalid_frame', message: /must be a JSON object/ });
  }
});

test('an unknown type: unknown_type, echoing the id', async (ctx) => {
  const error = await expectError(ctx.client, JSON.stringify({ type: 'thread.explode', id: 'u-1', payload: {} }), {
    code: 'unknown_type',
    id: 'u-1',
  });
  assert.match(error.payload.message, /thread\.explode/);
  assert.match(error.payload.message, /message\.send/, 'the message lists the known types');
  // Without an id it is still answered, without one.
  await expectError(ctx.client, JSON.stringify({ type: 'nope', payload: {} }), { code: 'unknown_type' });
});

test('a payload that breaks the schema: invalid_frame with the id and a precise message', async (ctx) => {
  await expectError(ctx.client, '{"type":"message.send","id":"r2","payload":{"content":42}}', {
    code: 'invalid_frame',
    id: 'r2',
    message: 'payload.content must be a string',
  });
  await expectError(ctx.client, JSON.stringify({ type: 'message.send', id: 'req-a', payload: { content: '' } }), {
    code: 'invalid_frame',
    id: 'req-a',
    message: /^payload\.content /,
  });
  await expectError(ctx.client, JSON.stringify({ type: 'run.cancel', id: 'req-b', payload: { run_id: 'has spaces' } }), {
    code: 'invalid_frame',
    id: 'req-b',
    message: /^payload\.run_id /,
  });
});

test('a missing required field: invalid_frame naming it', async (ctx) => {
  await expectError(ctx.client, JSON.stringify({ type: 'message.send', id: 'm-1', payload: {} }), {
    code: 'invalid_frame',
    id: 'm-1',
    message: 'payload.content is required',
  });
  // No payload at all is an empty payload, which still lacks the field.
  await expectError(ctx.client, JSON.stringify({ type: 'thread.subscribe', id: 'm-2' }), {
    code: 'invalid_frame',
    id: 'm-2',
    message: 'payload.thread_id is required',
  });
  await expectError(ctx.client, JSON.stringify({ id: 'm-3', payload: {} }), {
    code: 'invalid_frame',
    id: 'm-3',
    message: 'frame.type is required',
  });
});

test('an unknown field, in the payload or the envelope: invalid_frame naming it', async (ctx) => {
  await expectError(ctx.client, JSON.stringify({ type: 'message.send', id: 'x-1', payload: { content: 'hi', contnet: 'typo' } }), {
    code: 'invalid_frame',
    id: 'x-1',
    message: "payload has an unknown field 'contnet'",
  });
  await expectError(ctx.client, JSON.stringify({ type: 'ping', id: 'x-2', payload: {}, extra: true }), {
    code: 'invalid_frame',
    id: 'x-2',
    message: "frame has an unknown field 'extra'",
  });
});

test('thread.subscribe with a negative after_seq: invalid_frame', async (ctx) => {
  await expectError(ctx.client, JSON.stringify({ type: 'thread.subscribe', id: 's-1', payload: { thread_id: 'th_x', after_seq: -1 } }), {
    code: 'invalid_frame',
    id: 's-1',
    message: /^payload\.after_seq /,
  });
  await expectError(ctx.client, JSON.stringify({ type: 'thread.subscribe', id: 's-2', payload: { thread_id: 'th_x', after_seq: 1.5 } }), {
    code: 'invalid_frame',
    id: 's-2',
    message: /^payload\.after_seq /,
  });
});

test('NUL in content: invalid_frame, and nothing is stored', async (ctx) => {
  await expectError(ctx.client, JSON.stringify({ type: 'message.send', id: 'n-1', payload: { content: 'hello\u0000world' } }), {
    code: 'invalid_frame',
    id: 'n-1',
    message: /NUL/,
  });
  const threads = await ctx.stack.db.selectFrom('threads').select('id').where('user_id', '=', 'framer').execute();
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('user_id', '=', 'framer').execute();
  assert.equal([threads, runs], [[], []], 'no thread or run was stored');
});

test('an id that is not a usable string is not echoed', async (ctx) => {
  await expectError(ctx.client, JSON.stringify({ type: 'nope', id: 7, payload: {} }), { code: 'invalid_frame', message: /^frame\.id / });
  await expectError(ctx.client, JSON.stringify({ type: 'ping', id: 'i'.repeat(129), payload: {} }), { code: 'invalid_frame', message: /^frame\.id / });
});

test('a binary frame: binary_not_supported, and the connection stays usable', async (ctx) => {
  await expectError(ctx.client, Buffer.from([0xde, 0xad, 0xbe, 0xef]), { code: 'binary_not_supported' });
  // Even a well-formed request in a binary frame is refused, not run.
  await expectError(ctx.client, Buffer.from(JSON.stringify({ type: 'ping', id: 'b-1', payload: {} })), { code: 'binary_not_supported' });
  assert.not.ok(ctx.client.frames.some((f) => f.type === 'pong' && f.id === 'b-1'), 'the binary ping was not answered');
});

test('frames that carry tokens are refused without echoing them', async (ctx) => {
  const foreign = await signToken(randomBytes(32).toString('hex'), { sub: 'framer', workspace: 'acme', ttlSeconds: 600 });
  const expired = await signToken(ctx.stack.secret, { sub: 'framer', workspace: 'acme', ttlSeconds: -60 });
  ctx.secrets.push(foreign, expired);
  await expectError(ctx.client, ctx.token, { code: 'invalid_frame' });
  await expectError(ctx.client, JSON.stringify({ type: ctx.token, id: 't-1', payload: {} }), { code: 'invalid_frame', id: 't-1' });
  await expectError(ctx.client, JSON.stringify({ type: 'auth.login', id: 't-2', payload: { token: ctx.token } }), { code: 'unknown_type', id: 't-2' });
  await expectError(ctx.client, JSON.stringify({ type: 'ping', id: 't-3', payload: { token: ctx.token } }), {
    code: 'invalid_frame',
    id: 't-3',
    message: "payload has an unknown field 'token'",
  });
  await expectError(ctx.client, JSON.stringify({ type: 'auth.refresh', id: 't-4', payload: { token: foreign } }), { code: 'unauthenticated', id: 't-4' });
  await expectError(ctx.client, JSON.stringify({ type: 'auth.refresh', id: 't-5', payload: { token: expired } }), { code: 'token_expired', id: 't-5' });
  await expectError(ctx.client, JSON.stringify({ type: 'auth.refresh', id: 't-6', payload: { token: 42 } }), { code: 'invalid_frame', id: 't-6' });
  await expectError(ctx.client, Buffer.from(ctx.token), { code: 'binary_not_supported' });
});

test('after all of that, the same connection runs a full turn', async (ctx) => {
  const ack = await ctx.client.request('message.send', { content: 'Still here? [[words:8]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack));
  const done = await ctx.client.completed(ack.payload.run_id);
  assert.is(done.payload.status, 'completed');
  assert.is(ctx.client.closeCode, undefined);
});

test('no frame the server sent contains a token', async (ctx) => {
  const errors = ctx.raw.filter((text) => JSON.parse(text).type === 'error');
  assert.ok(errors.length >= 30, `the error frames were recorded raw (${errors.length})`);
  // session.ready can be parsed before connect() returns, so the raw recording starts after it.
  const first = ctx.client.frames[0]!;
  assert.is(first.type, 'session.ready');
  assert.ok(ctx.raw.length >= ctx.client.frames.length - 1, 'every frame after session.ready was recorded raw');
  assert.equal(ctx.raw.map((text) => JSON.parse(text)), ctx.client.frames.slice(-ctx.raw.length), 'raw and parsed frames agree');
  for (const text of [JSON.stringify(first), ...ctx.raw]) {
    for (const secret of ctx.secrets) {
      assert.not.ok(text.includes(secret), `a frame contains a token: ${text.slice(0, 200)}`);
      const signature = secret.split('.')[2]!;
      assert.not.ok(text.includes(signature), `a frame contains a token's signature: ${text.slice(0, 200)}`);
    }
  }
});

test('MAX_FRAME_BYTES: a frame over the limit closes with 1009; one at the limit is answered', async (ctx) => {
  const node = await ctx.stack.start({}, { MAX_FRAME_BYTES: '4096' });
  const url = ctx.stack.wsUrl(node);
  const token = await ctx.stack.token('limiter', 'acme');
  const open = async () => {
    const client = await TestClient.connect(url, { token });
    ctx.clients.push(client);
    await client.next((f) => f.type === 'session.ready', DEADLINE_MS);
    return client;
  };
  /** A valid message.send frame of exactly `bytes` bytes. */
  const frameOf = (bytes: number, id: string) => {
    const shell = JSON.stringify({ type: 'message.send', id, payload: { content: '' } });
    const text = JSON.stringify({ type: 'message.send', id, payload: { content: 'x'.repeat(bytes - Buffer.byteLength(shell)) } });
    assert.is(Buffer.byteLength(text), bytes);
    return text;
  };

  const ok = await open();
  for (const [bytes, id] of [[4000, 'under'], [4096, 'at-limit']] as const) {
    const from = ok.frames.length;
    ok.send(frameOf(bytes, id));
    const ack = await ok.next((f) => f.id === id, DEADLINE_MS, from);
    assert.is(ack.type, 'ack', `${bytes} bytes are answered normally: ${JSON.stringify(ack)}`);
    await ok.completed(ack.payload.run_id);
  }
  await assertAlive(ok);

  for (const bytes of [4097, 5000]) {
    const big = await open();
    const from = big.frames.length;
    big.send(frameOf(bytes, `big-${bytes}`));
    const code = await big.waitClose(DEADLINE_MS);
    assert.is(code, 1009, `${bytes} bytes close the socket with 1009`);
    assert.equal(big.frames.slice(from), [], 'nothing was answered before the close');
  }
  // Other sockets are not affected.
  await assertAlive(ok);
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('user_id', '=', 'limiter').execute();
  assert.is(runs.length, 2, 'only the two frames within the limit ran');
});

test('/health and /live answer 200 ok, /ready 200 with Postgres and Redis up, unknown routes 404 JSON', async (ctx) => {
  const port = ctx.node.gateway!.port;
  for (const path of ['/health', '/live']) {
    const answer = await httpGet(port, path);
    assert.is(answer.status, 200, path);
    assert.match(answer.type, /^application\/json/, path);
    assert.equal(JSON.parse(answer.body), { status: 'ok' }, path);
  }
  const ready = await httpGet(port, '/ready');
  assert.is(ready.status, 200, `/ready: ${ready.body}`);
  assert.match(ready.type, /^application\/json/);
  assert.is(JSON.parse(ready.body).status, 'ready');
  for (const [method, path] of [['GET', '/nope'], ['GET', '/v2/ws'], ['GET', '/health/extra'], ['POST', '/v1/nothing']] as const) {
    const answer = await httpGet(port, path, method);
    assert.is(answer.status, 404, `${method} ${path}`);
    assert.match(answer.type, /^application\/json/, `${method} ${path}`);
    const body = JSON.parse(answer.body);
    assert.is(body.code, 'not_found', `${method} ${path}`);
    assert.type(body.message, 'string');
  }
});

test('HTTP papercuts: HEAD on the health routes, 405 with Allow on a known path, 426 for /v1/ws without an upgrade', async (ctx) => {
  const port = ctx.node.gateway!.port;
  for (const path of ['/health', '/live', '/ready']) {
    const head = await httpGet(port, path, 'HEAD');
    assert.is(head.status, 200, `HEAD ${path}`);
    assert.is(head.body, '', `HEAD ${path} has no body`);
  }
  for (const [method, path, allow] of [
    ['POST', '/health', 'GET, HEAD'],
    ['DELETE', '/ready', 'GET, HEAD'],
    ['PUT', '/v1/threads', 'GET, POST, HEAD, OPTIONS'],
    ['POST', '/v1/threads/t_x', 'GET, PATCH, DELETE, HEAD, OPTIONS'],
  ] as const) {
    const answer = await httpGet(port, path, method);
    assert.is(answer.status, 405, `${method} ${path}: ${answer.body}`);
    assert.is(answer.headers.allow, allow, `${method} ${path}: Allow`);
    const body = JSON.parse(answer.body);
    assert.equal([body.code, body.retryable], ['invalid_request', false]);
    assert.ok(body.message.includes(method) && body.message.includes(allow), body.message);
  }
  const plain = await httpGet(port, '/v1/ws');
  assert.is(plain.status, 426, plain.body);
  assert.is(plain.headers.upgrade, 'websocket');
  assert.match(JSON.parse(plain.body).message, /WebSocket/);
});

test.run();
