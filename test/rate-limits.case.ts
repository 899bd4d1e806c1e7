/**
 * Rate limits over real sockets, real Redis and real Postgres: messages per user per minute
 * (shared by two gateways and the REST mirror), open sockets per user (across gateways, refused
 * with HTTP 429 before the upgrade), frames per connection per second (and 4008 for a client that
 * keeps hammering), queued+running runs per user (counted in Postgres, race-free), 0 as "off",
 * the limiter's own window and Redis outage behaviour; on one Redis node (rate-limits.test.ts, with the
 * embedded in-process limiter) and on a Redis Cluster (rate-limits.cluster.test.ts).
 *
 * No worker runs in the Redis stack until the runs test starts one: every run stays queued, so
 * the counts are exact and nothing finishes behind a test's back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { Cluster, Redis } from 'ioredis';
import { createStack, type TestStack } from './support/stack.js';
import { TestClient, type Frame } from './support/client.js';
import { rest, restBase } from './support/rest-client.js';
import { REDIS_URL, uniquePrefix, testRedis } from './support/database.js';
import { sleep, waitFor } from './support/wait.js';
import { createLogger } from '../server/logger.js';
import { RateLimiter } from '../server/rate-limits/index.js';
import { RedisConnectionSlots } from '../server/rate-limits/connection-slots.js';
import { RequestError } from '../server/errors.js';
import type { RunningNode } from '../app/node.js';
import { redisConnections, type RedisConnections } from '../redis/connections.js';
import { clusterConnections, startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';

export const LIMITS = {
  RATE_LIMIT_MESSAGES_PER_MIN: '4',
  RATE_LIMIT_FRAMES_PER_SEC: '20',
  RATE_LIMIT_CONNECTIONS_PER_USER: '2',
  RATE_LIMIT_RUNS_PER_USER: '0',
  BAD_FRAME_LIMIT: '5',
};
export const OFF = { RATE_LIMIT_MESSAGES_PER_MIN: '0', RATE_LIMIT_FRAMES_PER_SEC: '0', RATE_LIMIT_CONNECTIONS_PER_USER: '0', RATE_LIMIT_RUNS_PER_USER: '0' };

interface Ctx {
  cluster?: ThrowawayRedisCluster;
  stack: TestStack;
  /** Two gateways sharing the stack's Redis and database. */
  a: RunningNode;
  b: RunningNode;
  /** A gateway with RATE_LIMIT_RUNS_PER_USER=2 (and no messages limit). */
  runs: RunningNode;
  /** A gateway with every limit 0. */
  free: RunningNode;
  clients: TestClient[];
}

export const silent = createLogger('silent');

export async function connect(ctx: { stack: TestStack; clients: TestClient[] }, node: RunningNode, sub: string): Promise<TestClient> {
  const client = await TestClient.connect(ctx.stack.wsUrl(node), { token: await ctx.stack.token(sub) });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  return client;
}

/** An upgrade's answer: 101 with the open socket, or the refusal's status, JSON body and Retry-After. */
export function upgrade(url: string, token: string): Promise<{ status: number; body?: any; retryAfter?: string; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const timer = setTimeout(() => reject(new Error('no answer to the upgrade')), 5_000);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ status: 101, ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), retryAfter: res.headers['retry-after'] as string | undefined });
      });
    });
    ws.once('error', () => {});
  });
}

/** A `rate_limited` error frame (or REST body) whose message names the limit. */
export function assertRateLimited(payload: any, message: RegExp, maxRetryMs: number): number {
  assert.is(payload.code, 'rate_limited', JSON.stringify(payload));
  assert.match(payload.message, message);
  assert.ok(Number.isInteger(payload.retry_after_ms) && payload.retry_after_ms > 0 && payload.retry_after_ms <= maxRetryMs, `retry_after_ms ${payload.retry_after_ms}`);
  assert.is(payload.retryable, true, 'rate_limited is retryable');
  // The message's wait and retry_after_ms are one figure, said two ways.
  const said = /Retry in (\d+(?:\.\d)?) (ms|s)\b/i.exec(payload.message);
  if (said) {
    const ms = Number(said[1]) * (said[2] === 's' ? 1000 : 1);
    const slack = said[2] === 's' ? (Number(said[1]) >= 10 ? 1000 : 100) : 0;
    assert.ok(ms >= payload.retry_after_ms && ms - payload.retry_after_ms <= slack, `"${payload.message}" agrees with retry_after_ms ${payload.retry_after_ms}`);
  }
  return payload.retry_after_ms;
}

async function storedMessages(stack: TestStack, userId: string): Promise<number> {
  const row = await stack.db
    .selectFrom('messages')
    .innerJoin('threads', 'threads.id', 'messages.thread_id')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('threads.user_id', '=', userId)
    .where('messages.role', '=', 'user')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The suite on one Redis node or on a throwaway Redis Cluster (started and removed by the suite). */
export function rateLimitsSuite(backend: 'redis' | 'cluster'): void {
  const test = suite<Ctx>(`rate limits (${backend}, two gateways)`);

  /** The suite's Redis connections (a fresh prefix unless told), on its one node or its cluster. */
  const connections = (ctx: Ctx, prefix = uniquePrefix()): RedisConnections => (ctx.cluster ? clusterConnections(ctx.cluster, prefix) : testRedis(prefix));

  /** A plain client for asking Redis itself (an ioredis Cluster on the cluster: the same commands). */
  const plain = (ctx: Ctx): Redis => (ctx.cluster ? (new Cluster(ctx.cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }))) as unknown as Redis) : new Redis(REDIS_URL));

  test.before(async (ctx) => {
    if (backend === 'cluster') ctx.cluster = await startThrowawayRedisCluster();
    ctx.stack = await createStack({ env: { ...LIMITS, ...(ctx.cluster ? { REDIS_URL: '', REDIS_CLUSTER_NODES: ctx.cluster.nodesSetting } : {}) } });
    ctx.a = await ctx.stack.start({ gateway: true, worker: false });
    ctx.b = await ctx.stack.start({ gateway: true, worker: false });
    ctx.runs = await ctx.stack.start({ gateway: true, worker: false }, { RATE_LIMIT_RUNS_PER_USER: '2', RATE_LIMIT_MESSAGES_PER_MIN: '0' });
    ctx.free = await ctx.stack.start({ gateway: true, worker: false }, OFF);
    ctx.clients = [];
  });
  test.after.each((ctx) => {
    for (const client of ctx.clients.splice(0)) client.close();
  });
  test.after(async (ctx) => {
    await ctx.stack?.close();
    await ctx.cluster?.close();
  });

  test('messages per minute: one budget across two gateways; the fifth send is refused with when to retry', async (ctx) => {
    const onA = await connect(ctx, ctx.a, 'msg');
    const onB = await connect(ctx, ctx.b, 'msg');
    const started = Date.now();
    const first = await onA.request('message.send', { content: 'one' });
    assert.is(first.type, 'ack', JSON.stringify(first));
    const thread_id = first.payload.thread_id;
    assert.is((await onA.request('message.send', { thread_id, content: 'two' })).type, 'ack');
    assert.is((await onB.request('message.send', { thread_id, content: 'three' })).type, 'ack');
    assert.is((await onB.request('message.send', { thread_id, content: 'four' })).type, 'ack');

    for (const client of [onA, onB]) {
      const refused = await client.request('message.send', { thread_id, content: 'five' });
      assert.is(refused.type, 'error', 'refused on either gateway: half the budget was spent on each');
      const retry = assertRateLimited(refused.payload, /^Too many messages: at most 4 per minute\. Retry in \d+ s\.$/, 60_000);
      const elapsed = Date.now() - started;
      assert.ok(retry >= 60_000 - elapsed - 50, `the window opened with the first send ${elapsed} ms ago: retry_after_ms ${retry}`);
      assert.ok(refused.payload.message.includes(`Retry in ${Math.ceil(retry / 1000)} s.`), refused.payload.message);
    }
    assert.is(await storedMessages(ctx.stack, 'msg'), 4, 'refused sends stored nothing');
    assert.ok(onA.closeCode === undefined && onB.closeCode === undefined, 'a refused send does not close the socket');

    const other = await connect(ctx, ctx.b, 'msg-other');
    assert.is((await other.request('message.send', { content: 'another user has their own budget' })).type, 'ack');
  });

  test('messages per minute: a deduplicated retry (same client_message_id) does not spend the budget', async (ctx) => {
    const client = await connect(ctx, ctx.a, 'dedup');
    const first = await client.request('message.send', { content: 'once', client_message_id: 'cm-1' });
    assert.is(first.type, 'ack');
    for (let i = 0; i < 5; i++) {
      const again = await client.request('message.send', { content: 'once', client_message_id: 'cm-1' });
      assert.equal([again.type, again.payload.deduplicated, again.payload.run_id], ['ack', true, first.payload.run_id]);
    }
    for (let i = 2; i <= 4; i++) assert.is((await client.request('message.send', { content: `send ${i}` })).type, 'ack', `send ${i} of 4`);
    const refused = await client.request('message.send', { content: 'send 5' });
    assertRateLimited(refused.payload, /at most 4 per minute/, 60_000);
  });

  test('REST POST .../messages shares the budget and answers 429 with Retry-After', async (ctx) => {
    const token = await ctx.stack.token('rest');
    const created = await rest(restBase(ctx.a), 'POST', '/v1/threads', { token, body: {} });
    assert.is(created.status, 201);
    const path = `/v1/threads/${created.body.id}/messages`;
    for (const node of [ctx.a, ctx.b]) {
      const sent = await rest(restBase(node), 'POST', path, { token, body: { content: 'over REST' } });
      assert.is(sent.status, 202, JSON.stringify(sent.body));
    }
    const socket = await connect(ctx, ctx.b, 'rest');
    assert.is((await socket.request('message.send', { thread_id: created.body.id, content: 'over the socket' })).type, 'ack');
    assert.is((await rest(restBase(ctx.a), 'POST', path, { token, body: { content: 'fourth' } })).status, 202);

    const refused = await rest(restBase(ctx.b), 'POST', path, { token, body: { content: 'fifth' } });
    assert.is(refused.status, 429);
    const retry = assertRateLimited(refused.body, /^Too many messages: at most 4 per minute\. Retry in \d+ s\.$/, 60_000);
    assert.is(refused.headers.get('retry-after'), String(Math.ceil(retry / 1000)), 'Retry-After in whole seconds');
    const ws = await socket.request('message.send', { thread_id: created.body.id, content: 'sixth' });
    assertRateLimited(ws.payload, /at most 4 per minute/, 60_000);
    // Other REST routes are not limited by it.
    assert.is((await rest(restBase(ctx.b), 'GET', `/v1/threads/${created.body.id}`, { token })).status, 200);
  });

  test('open sockets per user: counted across gateways, the next gets HTTP 429 before any upgrade, a closed socket frees its slot', async (ctx) => {
    const token = await ctx.stack.token('conn');
    const first = await connect(ctx, ctx.a, 'conn');
    await connect(ctx, ctx.b, 'conn');
    for (const node of [ctx.a, ctx.b]) {
      const refused = await upgrade(ctx.stack.wsUrl(node), token);
      assert.is(refused.status, 429, `refused on ${node === ctx.a ? 'a' : 'b'}`);
      assertRateLimited(refused.body, /^Too many open connections: at most 2 per user\. Close one, or retry in 1 s\.$/, 1000);
      assert.is(refused.retryAfter, '1');
    }
    const redis = plain(ctx);
    try {
      const key = `${ctx.stack.prefix}rl:connections:acme:conn`;
      assert.is(await redis.zcard(key), 2, 'the refused upgrades took no slot');
      const expiry = Number((await redis.zrange(key, '0', '0', 'WITHSCORES'))[1]);
      const [seconds] = await redis.time();
      assert.ok(expiry > Number(seconds) * 1000 + 50_000, 'entries live about a minute between refreshes');

      // Another user is not affected.
      await connect(ctx, ctx.a, 'conn-other');

      await first.closeGracefully();
      await waitFor(async () => (await redis.zcard(key)) === 1, 2_000, 'the closed socket to free its slot');
      const third = await connect(ctx, ctx.b, 'conn');
      assert.ok(third, 'a freed slot can be taken again');
      assert.is((await upgrade(ctx.stack.wsUrl(ctx.a), token)).status, 429, 'and the limit holds again');
    } finally {
      redis.disconnect();
    }
  });

  test('frames per second: a burst past the limit is refused frame by frame with the id, and the socket recovers', async (ctx) => {
    const client = await connect(ctx, ctx.a, 'frames');
    for (let i = 0; i < 24; i++) client.send({ type: 'ping', id: `f${i}`, payload: {} });
    await client.until(() => client.frames.filter((f) => f.id?.startsWith('f')).length === 24, 5_000, '24 answers');
    const answers = client.frames.filter((f) => f.id?.startsWith('f'));
    assert.equal(answers.filter((f) => f.type === 'pong').map((f) => f.id), Array.from({ length: 20 }, (_, i) => `f${i}`), 'a burst of 20 passes, in order');
    const refused = answers.filter((f) => f.type === 'error');
    assert.equal(refused.map((f) => f.id), ['f20', 'f21', 'f22', 'f23'], 'each refusal echoes its frame id');
    let wait = 0;
    for (const frame of refused) wait = Math.max(wait, assertRateLimited(frame.payload, /^Too many frames: at most 20 per second on one connection\. Retry in \d+ ms\.$/, 50));
    // A threshold to pass: the refusals' retry_after_ms.
    await sleep(wait);
    assert.is((await client.request('ping', {})).type, 'pong', 'after retry_after_ms a frame passes again');
    assert.is(client.closeCode, undefined, 'four refusals (BAD_FRAME_LIMIT 5) do not close it');
  });

  test('frames per second: a client that keeps sending at twice the rate is closed with 4008', async (ctx) => {
    const client = await connect(ctx, ctx.a, 'abuser');
    let sent = 0;
    const started = Date.now();
    const pump = setInterval(() => client.send({ type: 'ping', id: `p${sent++}`, payload: {} }), 25);
    try {
      assert.is(await client.waitClose(6_000), 4008);
    } finally {
      clearInterval(pump);
    }
    const refused = client.frames.filter((f) => f.type === 'error');
    assert.is(refused.length, 6, 'closed at the first refusal past BAD_FRAME_LIMIT (5)');
    assert.ok(refused.every((f) => f.payload.code === 'rate_limited'));
    const pongs = client.frames.filter((f) => f.type === 'pong').length;
    assert.ok(pongs >= 20, `the burst and the sustained 20/s passed first (${pongs} pongs of ${sent} pings in ${Date.now() - started} ms)`);
    // Policy close is not a ban: the user connects again at once.
    const again = await connect(ctx, ctx.a, 'abuser');
    assert.is((await again.request('ping', {})).type, 'pong');
  });

  test('runs per user: queued+running runs are counted in Postgres, race-free, and a finished or cancelled run frees a slot', async (ctx) => {
    const client = await connect(ctx, ctx.runs, 'runner');
    const token = await ctx.stack.token('runner');
    const one = await client.request('message.send', { content: 'first [[words:30]] [[delay:40]]' });
    const two = await client.request('message.send', { content: 'second [[words:30]] [[delay:40]]' });
    assert.equal([one.type, two.type], ['ack', 'ack']);
    const refused = await client.request('message.send', { content: 'third' });
    assertRateLimited(refused.payload, /^Too many active runs: at most 2 queued or running per user\. Retry in 1 s, once one has finished \(or cancel one\)\.$/, 1000);
    assert.is(refused.payload.retry_after_ms, 1000, 'a hint');
    const overRest = await rest(restBase(ctx.runs), 'POST', `/v1/threads/${one.payload.thread_id}/messages`, { token, body: { content: 'third, over REST' } });
    assert.is(overRest.status, 429);
    assert.is(overRest.headers.get('retry-after'), '1');
    assert.is(await storedMessages(ctx.stack, 'runner'), 2, 'a refused send stored nothing, not even its new thread');

    // A cancelled run frees its slot; five sends racing for it get exactly one.
    const cancelled = await client.request('run.cancel', { run_id: two.payload.run_id });
    assert.is(cancelled.payload.status, 'cancelled');
    const raced = await Promise.all(Array.from({ length: 5 }, (_, i) => client.request('message.send', { content: `race ${i} [[words:30]] [[delay:40]]` })));
    assert.is(raced.filter((f) => f.type === 'ack').length, 1, `exactly one of five concurrent sends passes: ${JSON.stringify(raced.map((f) => f.payload.code ?? 'ack'))}`);
    assert.ok(raced.filter((f) => f.type === 'error').every((f) => f.payload.code === 'rate_limited'));
    const winner = raced.find((f) => f.type === 'ack')!;

    // A worker arrives: a running run still counts; a finished one frees its slot.
    await ctx.stack.start({ gateway: false, worker: true });
    await waitFor(async () => {
      const run = await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', one.payload.run_id).executeTakeFirstOrThrow();
      return run.status === 'running';
    }, 10_000, 'the first run to start');
    assertRateLimited((await client.request('message.send', { content: 'while running' })).payload, /at most 2 queued or running/, 1000);
    await client.completed(one.payload.run_id);
    await client.completed(winner.payload.run_id);
    const after = await client.request('message.send', { content: 'after they finished' });
    assert.is(after.type, 'ack', JSON.stringify(after));
    await client.completed(after.payload.run_id);
  });

  test('a limit of 0 turns it off', async (ctx) => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect(ctx, ctx.free, 'free')));
    const client = clients[0]!;
    for (let i = 0; i < 8; i++) assert.is((await client.request('message.send', { content: `free ${i}` })).type, 'ack', `send ${i}`);
    for (let i = 0; i < 60; i++) client.send({ type: 'ping', id: `z${i}`, payload: {} });
    await client.until(() => client.frames.filter((f: Frame) => f.id?.startsWith('z')).length === 60, 5_000, '60 answers');
    assert.ok(client.frames.filter((f) => f.id?.startsWith('z')).every((f) => f.type === 'pong'), 'a burst of 60 frames passes');
  });

  // The limiter on its own: what the end-to-end tests cannot wait for.

  test('the messages window ends: after retry_after_ms the budget is back (Redis and in process)', async (ctx) => {
    for (const redis of [connections(ctx), undefined]) {
      const limiter = await RateLimiter.create({
        limits: { messagesPerMinute: 2, framesPerSecond: 0, connectionsPerUser: 0, runsPerUser: 0, inFlightPerUser: 0, restPerSecond: 0, threadsPerMinute: 0 },
        log: silent,
        redis,
        messageWindowMs: 1000,
      });
      try {
        const user = { workspaceId: 'w', userId: 'u' };
        await limiter.consumeMessage(user);
        await limiter.consumeMessage(user);
        const refusal = await limiter.consumeMessage(user).then(() => undefined, (error: unknown) => error);
        assert.instance(refusal, RequestError, redis ? 'redis' : 'memory');
        const { code, message, retryAfterMs } = refusal as RequestError;
        assert.is(code, 'rate_limited');
        assert.match(message, /at most 2 per 1 s/);
        assert.ok(retryAfterMs! > 0 && retryAfterMs! <= 1000, `retry after ${retryAfterMs}`);
        await sleep(retryAfterMs! + 30); // a threshold to pass: the window the refusal named
        await limiter.consumeMessage(user);
      } finally {
        await limiter.close();
      }
    }
  });

  test('Redis unreachable: messages are still limited per process (insurance limiter) and sockets are let in', async (ctx) => {
    const limiter = await RateLimiter.create({
      limits: { messagesPerMinute: 2, framesPerSecond: 0, connectionsPerUser: 1, runsPerUser: 0, inFlightPerUser: 0, restPerSecond: 0, threadsPerMinute: 0 },
      log: silent,
      redis: ctx.cluster
        ? redisConnections({ clusterNodes: [{ host: '127.0.0.1', port: 1 }], prefix: uniquePrefix() })
        : testRedis(uniquePrefix(), 'redis://127.0.0.1:1'),
    });
    try {
      const user = { workspaceId: 'w', userId: 'u' };
      const started = Date.now();
      await limiter.consumeMessage(user);
      await limiter.consumeMessage(user);
      const refusal = await limiter.consumeMessage(user).then(() => undefined, (error: unknown) => error);
      assert.is((refusal as RequestError)?.code, 'rate_limited', 'the in-memory insurance limiter still counts');
      assert.is(await limiter.acquireConnection(user, 'c1'), undefined);
      assert.is(await limiter.acquireConnection(user, 'c2'), undefined, 'no socket is refused for want of Redis');
      assert.ok(Date.now() - started < 500, `without waiting on Redis (${Date.now() - started} ms)`);
    } finally {
      await limiter.close();
    }
  });

  test('a crashed gateway\'s socket entries expire; a live gateway\'s are refreshed', async (ctx) => {
    const prefix = uniquePrefix();
    const live = plain(ctx);
    const crashing = plain(ctx);
    const options = { ttlMs: 600, refreshMs: 100 };
    const liveSlots = new RedisConnectionSlots(live, prefix, silent, options);
    const crashedSlots = new RedisConnectionSlots(crashing, prefix, silent, options);
    try {
      await waitFor(() => live.status === 'ready' && crashing.status === 'ready', 2_000, 'Redis');
      assert.ok(await crashedSlots.acquire('u', 'c-crashed', 2));
      assert.ok(await liveSlots.acquire('u', 'c-live', 2));
      assert.not.ok(await liveSlots.acquire('u', 'c-third', 2), 'full');
      crashing.disconnect(); // the gateway dies: no release, no refresh
      await sleep(900); // a lifetime to pass: the crashed gateway's entry (ttl 600 ms) is never refreshed
      assert.ok(await liveSlots.acquire('u', 'c-third', 2), 'the crashed gateway\'s entry expired');
      assert.equal((await live.zrange(liveSlots.key('u'), '0', '-1')).sort(), ['c-live', 'c-third'], 'the refreshed entry is still there');
      assert.not.ok(await liveSlots.acquire('u', 'c-fourth', 2));
    } finally {
      await liveSlots.close();
      await crashedSlots.close();
      assert.is(await live.exists(liveSlots.key('u')), 0, 'a gateway that closes removes its entries');
      live.disconnect();
    }
  });

  test.run();
}
