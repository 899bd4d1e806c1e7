/**
 * The defects an outside probe found (issue "One signed token must not stop the server…"), one
 * test each, against real Postgres, Redis and sockets: time claims out of range, a handler that
 * throws, frames taking effect in order (and a bounded queue), a production banner, a busy port,
 * text Postgres cannot store, a key set that is down, a thread deleted mid-turn, and refusals a
 * browser can read.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { rest, restBase } from './support/rest-client.js';
import { startJwks } from './support/jwks.js';
import { waitFor, within } from './support/wait.js';
import { cleanEnv, run, type Child } from './support/process.js';
import { createTokenVerifier, type Principal } from '../server/auth.js';
import type { RunningNode } from '../app/node.js';

const test = suite<StackCtx & { children: Child[] }>('hardening');
useStack(test, { setup: (ctx) => void (ctx.children = []), teardown: (ctx) => ctx.children.forEach((c) => c.kill('SIGKILL')) });

function hs256(secret: string, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Opens a socket offering chat.v1 (as a browser does) and reports how a refusal reached it. */
function browserRefusal(url: string, protocols: string[], headers: Record<string, string> = {}) {
  return within(
    new Promise<{ frames: any[]; code: number; reason: string }>((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      const frames: any[] = [];
      ws.on('message', (data) => frames.push(JSON.parse(String(data))));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}: no upgrade`)));
      ws.once('error', reject);
      ws.once('close', (code, reason) => resolve({ frames, code, reason: reason.toString() }));
    }),
    5_000,
    'a refusal by close',
  );
}

/** One handshake without chat.v1: the HTTP status, headers and JSON body. */
function handshake(url: string, headers: Record<string, string>) {
  return within(
    new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => reject(new Error('upgraded')));
      ws.once('error', () => {});
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) }));
      });
    }),
    5_000,
    'a handshake refusal',
  );
}

async function assertServing(ctx: StackCtx): Promise<void> {
  const client = await connect(ctx, `alive-${Math.random().toString(36).slice(2)}`);
  const ack = await client.request('message.send', { content: 'Still there? [[words:3]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack));
  assert.is((await client.completed(ack.payload.run_id)).payload.status, 'completed');
}

// ---- 1. time claims ------------------------------------------------------------------------------

test('a validly signed token with exp beyond the Date range is refused on every path; the process keeps serving', async (ctx) => {
  const bad = [
    ['exp 9e15', await hs256(ctx.stack.secret, { sub: 'far', workspace_id: 'acme', exp: 9e15 })],
    ['exp 1e300', await hs256(ctx.stack.secret, { sub: 'far', workspace_id: 'acme', exp: 1e300 })],
    ['iat -1', await hs256(ctx.stack.secret, { sub: 'far', workspace_id: 'acme', exp: nowS() + 600, iat: -1 })],
  ] as const;
  for (const [what, token] of bad) {
    const answer = await handshake(ctx.url, { authorization: `Bearer ${token}` });
    assert.equal([answer.status, answer.body.code], [401, 'unauthenticated'], `${what}: upgrade`);
    const closed = await browserRefusal(ctx.url, ['chat.v1', `bearer.${token}`]);
    assert.equal([closed.code, closed.reason], [4001, 'unauthenticated'], `${what}: upgrade by subprotocol`);
    const ticket = await rest(ctx.base, 'POST', '/v1/ws-ticket', { token });
    assert.equal([ticket.status, ticket.body.code], [401, 'unauthenticated'], `${what}: ticket`);
    const list = await rest(ctx.base, 'GET', '/v1/threads', { token });
    assert.equal([list.status, list.body.code], [401, 'unauthenticated'], `${what}: REST`);
    assert.match(list.body.message, /claim must be a time/, list.body.message);
  }
  // auth.refresh on a live socket: refused, and the socket (and its token timers) carry on.
  const client = await connect(ctx, 'refresher');
  const far = await hs256(ctx.stack.secret, { sub: 'refresher', workspace_id: 'acme', exp: 9e15 });
  const refused = await client.request('auth.refresh', { token: far });
  assert.equal([refused.type, refused.payload.code], ['error', 'unauthenticated']);
  assert.is((await client.request('ping', {})).type, 'pong', 'the socket is still served');
  await assertServing(ctx);
});

// ---- the guard -------------------------------------------------------------------------------------

test('a handler that throws closes only its socket (1011); the process and the other sockets go on', async (ctx) => {
  const real = createTokenVerifier({ jwtSecret: ctx.stack.secret, workspaceClaim: 'workspace_id' });
  // A principal no real verifier makes: its expiry is not a date, so `open` throws on it.
  const verifyToken = async (token: string): Promise<Principal> =>
    token === 'boom' ? { userId: 'boom', workspaceId: 'acme', expiresAt: new Date(Number.NaN), roles: [] } : real(token);
  const node = await ctx.stack.start({ gateway: true, worker: false }, { LOG_LEVEL: 'error' }, { verifyToken });
  const url = ctx.stack.wsUrl(node);
  const bystander = await TestClient.connect(url, { token: await ctx.stack.token('bystander') });
  ctx.clients.push(bystander);
  await bystander.next((f) => f.type === 'session.ready');
  for (let i = 0; i < 3; i++) {
    const victim = await TestClient.connect(url, { token: 'boom' });
    ctx.clients.push(victim);
    assert.is(await victim.waitClose(), 1011, 'the socket whose handler threw is closed with 1011');
  }
  const ack = await bystander.request('message.send', { content: 'Unaffected [[words:3]]' });
  assert.is(ack.type, 'ack');
  assert.is((await bystander.completed(ack.payload.run_id)).payload.status, 'completed');
  assert.is((await rest(restBase(node), 'GET', '/health')).status, 200);
  const logged = ctx.stack.logs.filter((l) => l.where === 'ws open' && l.level === 50);
  assert.is(logged.length, 3, 'each error is logged once, with where it happened');
});

// ---- 3. frames take effect in order ----------------------------------------------------------------

test('frames of one socket take effect in the order sent: subscribe then unsubscribe, two sends, two updates', async (ctx) => {
  const client = await connect(ctx, 'orderly');
  const fanout = ctx.node.gateway!.fanout;
  for (let trial = 0; trial < 20; trial++) {
    const created = await client.request('thread.create', { title: `t${trial}` });
    const threadId = created.payload.id;
    client.send({ type: 'thread.subscribe', id: `s${trial}`, payload: { thread_id: threadId } });
    client.send({ type: 'thread.unsubscribe', id: `u${trial}`, payload: { thread_id: threadId } });
    await client.next((f) => f.id === `u${trial}`);
    const ids = client.frames.filter((f) => f.id === `s${trial}` || f.id === `u${trial}`).map((f) => `${f.id}:${f.type}`);
    assert.equal(ids, [`s${trial}:ack`, `u${trial}:ack`], 'answered in order');
    await waitFor(() => fanout.followersOf(threadId).length === 0, 2_000, `trial ${trial}: left subscribed`);
  }
  for (let trial = 0; trial < 20; trial++) {
    const created = await client.request('thread.create', {});
    const threadId = created.payload.id;
    client.send({ type: 'message.send', id: `a${trial}`, payload: { thread_id: threadId, content: `first ${trial} [[words:1]]` } });
    client.send({ type: 'message.send', id: `b${trial}`, payload: { thread_id: threadId, content: `second ${trial} [[words:1]]` } });
    const second = await client.next((f) => f.id === `b${trial}`);
    assert.is(second.type, 'ack', JSON.stringify(second));
    const stored = await ctx.stack.db
      .selectFrom('events')
      .select(['seq', 'payload'])
      .where('thread_id', '=', threadId)
      .where('type', '=', 'message_created')
      .orderBy('seq')
      .execute();
    assert.equal(stored.map((e) => (e.payload as any).message.content.split(' ')[0]), ['first', 'second'], `trial ${trial}: stored in the order sent`);
  }
  for (let trial = 0; trial < 10; trial++) {
    const created = await client.request('thread.create', {});
    client.send({ type: 'thread.update', id: `x${trial}`, payload: { thread_id: created.payload.id, title: 'one' } });
    client.send({ type: 'thread.update', id: `y${trial}`, payload: { thread_id: created.payload.id, title: 'two' } });
    await client.next((f) => f.id === `y${trial}`);
    const row = await ctx.stack.db.selectFrom('threads').select('title').where('id', '=', created.payload.id).executeTakeFirstOrThrow();
    assert.is(row.title, 'two', `trial ${trial}: the later update wins`);
  }
});

test('a socket may keep only MAX_QUEUED_FRAMES waiting: more are refused rate_limited, and a flood ends with 4008', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: false }, { MAX_QUEUED_FRAMES: '4', BAD_FRAME_LIMIT: '5' });
  const client = await TestClient.connect(ctx.stack.wsUrl(node), { token: await ctx.stack.token('piler') });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  // One frame is handled while four wait: a sixth sent in the same breath is refused, the rest run.
  for (let i = 0; i < 6; i++) client.send({ type: 'thread.list', id: `q${i}`, payload: {} });
  await client.until(() => client.frames.filter((f) => f.id?.startsWith('q')).length === 6, 5_000, 'six answers');
  const first = client.frames.filter((f) => f.id?.startsWith('q'));
  const refused = first.filter((f) => f.type === 'error');
  assert.equal(refused.map((f) => f.id), ['q5'], 'only the frame past the bound is refused');
  assert.equal([refused[0]!.payload.code, refused[0]!.payload.retryable], ['rate_limited', true]);
  assert.match(refused[0]!.payload.message, /at most 4 queued/);
  assert.ok(refused[0]!.payload.retry_after_ms > 0);
  assert.equal(first.filter((f) => f.type === 'ack').map((f) => f.id), ['q0', 'q1', 'q2', 'q3', 'q4'], 'the others answered, in order');
  // A client that keeps piling frames on is closed as a flood (past BAD_FRAME_LIMIT refusals).
  for (let i = 0; i < 30; i++) client.send({ type: 'thread.list', id: `f${i}`, payload: {} });
  assert.is(await client.waitClose(), 4008);
  assert.ok(client.frames.filter((f) => f.type === 'error' && f.id?.startsWith('f')).length >= 5, 'refused before the close');
});

// ---- 4 and 5: the real entry point ------------------------------------------------------------------

function serverProcess(ctx: StackCtx & { children: Child[] }, env: Record<string, string>): Child {
  const base = ctx.stack.env;
  const child = run(process.execPath, ['--import', 'tsx', 'app/main.ts', 'all'], cleanEnv({
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: base.DATABASE_URL!,
    REDIS_URL: base.REDIS_URL!,
    REDIS_PREFIX: base.REDIS_PREFIX!,
    OPENAI_BASE_URL: base.OPENAI_BASE_URL!,
    OPENAI_API_KEY: 'test-key',
    DATA_DIR: base.DATA_DIR!,
    ...env,
  }));
  ctx.children.push(child);
  return child;
}

test('a gateway with a configured secret, or in production, prints no credential', async (ctx) => {
  for (const env of [{ NODE_ENV: 'production', JWT_SECRET: ctx.stack.secret }, { JWT_SECRET: ctx.stack.secret }] as Array<Record<string, string>>) {
    const child = serverProcess(ctx, env);
    await child.waitFor(/ready: ws:\/\/\S+/, 60_000);
    await child.waitFor(/npm run -s token/);
    const printed = child.stdout() + child.stderr();
    assert.not.match(printed, /eyJ[A-Za-z0-9_-]{10,}/, `${JSON.stringify(Object.keys(env))}: no JWT in the output`);
    assert.not.ok(printed.includes(ctx.stack.secret), 'nor the secret');
    assert.not.match(printed, /wscat/, 'no ready-made command with a token');
    child.kill('SIGTERM');
    assert.is(await child.exited(20_000), 0);
  }
});

test('a second server on a port in use stops with one line naming PORT and a non-zero exit', async (ctx) => {
  const port = String(ctx.node.gateway!.port);
  const child = serverProcess(ctx, { JWT_SECRET: ctx.stack.secret, PORT: port });
  const code = await child.exited(60_000);
  assert.ok(code !== 0 && code !== null, `exit code ${code}`);
  const lines = child.stderr().trim().split('\n');
  assert.is(lines.length, 1, `one line: ${child.stderr()}`);
  assert.match(lines[0]!, /^Cannot start: PORT: .*in use/);
  // The first server still owns its port: every request reaches it.
  for (let i = 0; i < 10; i++) assert.is((await rest(ctx.base, 'GET', '/v1/threads', { token: await ctx.stack.token('owner') })).status, 200);
});

// ---- 6. text Postgres cannot store ------------------------------------------------------------------

test('lone surrogates are refused at validation, naming the field, and cost no message budget; bad cursor dates are 400', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: true }, { RATE_LIMIT_MESSAGES_PER_MIN: '2' });
  const url = ctx.stack.wsUrl(node);
  const base = restBase(node);
  const token = await ctx.stack.token('surrogate');
  const client = await TestClient.connect(url, { token });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  for (const content of ['\ud800', 'a\udfffb', 'end\ud83d']) {
    const refused = await client.request('message.send', { content });
    assert.equal([refused.type, refused.payload.code], ['error', 'invalid_frame']);
    assert.match(refused.payload.message, /^payload\.content must be valid Unicode/);
    const restRefused = await rest(base, 'POST', '/v1/threads', { token, body: { title: content } });
    assert.equal([restRefused.status, restRefused.body.code], [400, 'invalid_request']);
    assert.match(restRefused.body.message, /^body\.title must be valid Unicode/);
  }
  // The budget of two messages per minute is untouched by the refusals.
  for (let i = 0; i < 2; i++) assert.is((await client.request('message.send', { content: `fine ${i} 😀 [[words:1]]` })).type, 'ack');
  for (const date of ['2024-02-30T00:00:00.000000Z', '0000-01-01T00:00:00.000000Z', '2024-13-01T00:00:00.000000Z']) {
    const cursor = Buffer.from(JSON.stringify({ u: date, i: 't_x' })).toString('base64url');
    const listed = await client.request('thread.list', { cursor });
    assert.equal([listed.type, listed.payload.code], ['error', 'invalid_request'], date);
    const restListed = await rest(base, 'GET', `/v1/threads?cursor=${cursor}`, { token });
    assert.equal([restListed.status, restListed.body.code], [400, 'invalid_request'], date);
  }
});

test('a tool call whose arguments decode to a lone surrogate gets an error result and the run goes on', async (ctx) => {
  const client = await connect(ctx, 'toolsurrogate');
  const ack = await client.request('message.send', { content: 'Go [[tool:calculator {"expression":"1+\\ud800"}]]' });
  const done = await client.completed(ack.payload.run_id);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  const tool = client.events(ack.payload.thread_id).find((f) => f.type === 'tool_completed');
  assert.ok(tool, 'the tool call was reported');
  assert.is(tool!.payload.is_error, true);
  assert.match(tool!.payload.result, /Unicode/);
});

// ---- 7. a key set that is down ----------------------------------------------------------------------

test('JWKS outage: 503 unavailable with Retry-After (4503 for a browser), logged once; verified tokens keep working', async (ctx) => {
  const pair = await generateKeyPair('EdDSA');
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
  const jwks = await startJwks([jwk]);
  try {
    const node = await ctx.stack.start({ gateway: true, worker: false }, { JWT_SECRET: '', JWKS_URL: jwks.url, LOG_LEVEL: 'warn' });
    const url = ctx.stack.wsUrl(node);
    const base = restBase(node);
    const sign = (sub: string) =>
      new SignJWT({ workspace_id: 'acme' }).setProtectedHeader({ alg: 'EdDSA', kid: 'k1' }).setSubject(sub).setExpirationTime('10m').sign(pair.privateKey);
    jwks.down = true;
    const first = await sign('early');
    const upgrade = await handshake(url, { authorization: `Bearer ${first}` });
    assert.equal([upgrade.status, upgrade.body.code, upgrade.body.retryable], [503, 'unavailable', true]);
    assert.ok(Number(upgrade.headers['retry-after']) >= 1, 'Retry-After');
    const restAnswer = await rest(base, 'GET', '/v1/threads', { token: first });
    assert.equal([restAnswer.status, restAnswer.body.code], [503, 'unavailable']);
    assert.ok(Number(restAnswer.headers.get('retry-after')) >= 1);
    const closed = await browserRefusal(url, ['chat.v1', `bearer.${first}`]);
    assert.is(closed.code, 4503);
    assert.match(closed.reason, /^unavailable retry_after_ms=\d+$/);
    const outageLines = () => ctx.stack.logs.filter((l) => /key set \(JWKS_URL\) cannot be fetched/.test(l.msg ?? '')).length;
    assert.is(outageLines(), 1, 'logged once for the outage, not per request');

    jwks.down = false;
    const client = await TestClient.connect(url, { token: first });
    ctx.clients.push(client);
    await client.next((f) => f.type === 'session.ready');
    assert.is((await rest(base, 'GET', '/v1/threads', { token: first })).status, 200);
  } finally {
    await jwks.close();
  }
  // The verifier on its own, with the key set re-read on every call (no jose cache): a token
  // verified once keeps working through an outage until it expires; a new one is unavailable.
  const pair2 = await generateKeyPair('EdDSA');
  const jwks2 = await startJwks([{ ...(await exportJWK(pair2.publicKey)), kid: 'k2', alg: 'EdDSA', use: 'sig' }]);
  try {
    const verify = createTokenVerifier({ jwksUrl: jwks2.url, workspaceClaim: 'workspace_id', jwksCacheMaxAgeMs: 0 });
    const sign = (sub: string) =>
      new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: 'k2' }).setSubject(sub).setExpirationTime('10m').sign(pair2.privateKey);
    const known = await sign('known');
    assert.is((await verify(known)).userId, 'known');
    jwks2.down = true;
    assert.is((await verify(known)).userId, 'known', 'a verified token still verifies');
    const unknown = await sign('unknown');
    const error = await verify(unknown).then(() => undefined, (e: any) => e);
    assert.is(error?.code, 'unavailable');
  } finally {
    await jwks2.close();
  }
});

// ---- 8. deleted threads -------------------------------------------------------------------------------

test('a thread deleted mid-turn: its followers on every gateway are told and let go, and the run ends', async (ctx) => {
  const second = await ctx.stack.start({ gateway: true, worker: false });
  const owner = await connect(ctx, 'deleter');
  const other = await connect(ctx, 'deleter', 'acme', ctx.stack.wsUrl(second));
  const ack = await owner.request('message.send', { content: 'Long answer [[words:400]] [[delay:20]]' });
  const threadId = ack.payload.thread_id;
  assert.is((await other.request('thread.subscribe', { thread_id: threadId })).type, 'ack');
  await other.next((f) => f.type === 'message_delta' && f.payload.thread_id === threadId);
  const deleted = await owner.request('thread.delete', { thread_id: threadId });
  assert.equal(deleted.payload, { thread_id: threadId, deleted: true });
  for (const client of [owner, other]) {
    const told = await client.next((f) => f.type === 'thread_deleted');
    assert.is(told.payload.thread_id, threadId);
  }
  await waitFor(() => ctx.node.worker!.activeCount() === 0, 10_000, 'the run to end');
  for (const [client, node] of [[owner, ctx.node], [other, second]] as Array<[TestClient, RunningNode]>) {
    await waitFor(() => node.gateway!.fanout.followersOf(threadId).length === 0, 2_000, 'followers let go');
    const toldAt = client.frames.findIndex((f) => f.type === 'thread_deleted');
    assert.not.ok(client.frames.slice(toldAt + 1).some((f) => f.payload?.thread_id === threadId && typeof f.payload.seq === 'number'), 'no event of the thread after it');
  }
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('thread_id', '=', threadId).execute();
  assert.is(runs.length, 0, 'the run went with the thread');
  assert.is((await owner.request('thread.subscribe', { thread_id: threadId })).payload.code, 'not_found');
});

test('thread.subscribe with after_seq past the thread\'s last seq is an error carrying last_seq', async (ctx) => {
  const client = await connect(ctx, 'ahead');
  const ack = await client.request('message.send', { content: 'Hi [[words:2]]' });
  await client.completed(ack.payload.run_id);
  const last = client.events(ack.payload.thread_id).at(-1)!.payload.seq;
  const answer = await client.request('thread.subscribe', { thread_id: ack.payload.thread_id, after_seq: last + 5 });
  assert.equal([answer.type, answer.payload.code, answer.payload.last_seq, answer.payload.retryable], ['error', 'seq_out_of_range', last, false]);
  const level = await client.request('thread.subscribe', { thread_id: ack.payload.thread_id, after_seq: last });
  assert.equal([level.type, level.payload.last_seq], ['ack', last], 'after_seq equal to last_seq is fine');
});

// ---- 9. refusals a browser can read ----------------------------------------------------------------------

test('a browser-style handshake gets its refusal as a close: 4001 token_expired, 4003 forbidden, 4008 rate_limited with the hint', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: false }, { ALLOWED_ORIGINS: 'https://app.example.com', RATE_LIMIT_CONNECTIONS_PER_USER: '1' });
  const url = ctx.stack.wsUrl(node);
  const expired = await hs256(ctx.stack.secret, { sub: 'late', workspace_id: 'acme', exp: nowS() - 10 });
  const late = await browserRefusal(url, ['chat.v1', `bearer.${expired}`]);
  assert.equal([late.code, late.reason, late.frames[0]?.payload.code], [4001, 'token_expired', 'token_expired']);

  const token = await ctx.stack.token('browser');
  const evil = await browserRefusal(url, ['chat.v1', `bearer.${token}`], { origin: 'https://evil.example.com' });
  assert.equal([evil.code, evil.reason], [4003, 'forbidden']);

  const first = await TestClient.connect(url, { token, via: 'protocol' });
  ctx.clients.push(first);
  await first.next((f) => f.type === 'session.ready');
  const second = await browserRefusal(url, ['chat.v1', `bearer.${token}`]);
  assert.is(second.code, 4008);
  assert.match(second.reason, /^rate_limited retry_after_ms=\d+$/);
  assert.equal([second.frames[0]?.type, second.frames[0]?.payload.code, second.frames[0]?.payload.retryable], ['error', 'rate_limited', true]);
  // Without chat.v1 the same refusal is plain HTTP, as before.
  const plain = await handshake(url, { authorization: `Bearer ${token}` });
  assert.equal([plain.status, plain.body.code], [429, 'rate_limited']);
  assert.is(first.closeCode, undefined, 'the open socket was not disturbed');
});

// ---- papercuts -------------------------------------------------------------------------------------

test('content over 32,000 characters is too_large (413 over REST); every error says whether to retry', async (ctx) => {
  const client = await connect(ctx, 'verbose');
  const long = 'x'.repeat(32_001);
  const refused = await client.request('message.send', { content: long });
  assert.equal([refused.type, refused.payload.code, refused.payload.retryable], ['error', 'too_large', false]);
  assert.match(refused.payload.message, /payload\.content is longer than the 32000 characters allowed/);
  const created = await client.request('thread.create', {});
  const token = await ctx.stack.token('verbose');
  const restRefused = await rest(ctx.base, 'POST', `/v1/threads/${created.payload.id}/messages`, { token, body: { content: long } });
  assert.equal([restRefused.status, restRefused.body.code, restRefused.body.retryable], [413, 'too_large', false]);
  const atLimit = await client.request('message.send', { content: 'x'.repeat(32_000).slice(0, 31_988) + ' [[words:1]]' });
  assert.is(atLimit.type, 'ack', `the limit itself is fine: ${JSON.stringify(atLimit.payload)}`);
  const unknown = await client.request('nope.nope', {});
  assert.equal([unknown.payload.code, unknown.payload.retryable], ['unknown_type', false]);
  const missing = await client.request('thread.get', { thread_id: 't_missing' });
  assert.equal([missing.payload.code, missing.payload.retryable], ['not_found', false]);
});

test.run();
