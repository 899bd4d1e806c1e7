/**
 * Reconnects after policy closes (4008), on every backend: Redis (two gateways, one count), a Redis
 * Cluster (the same, on a throwaway 3-master cluster the suite starts and removes) and embedded
 * (in process). A user's first policy close is forgiven; after the second its handshakes
 * are refused (HTTP 429 with Retry-After, or close 4008 `rate_limited retry_after_ms=N` for a
 * browser-style client), held up to a second before the answer, on every gateway, and for longer
 * after the next; other users are not affected. An address is refused once its users' policy
 * closes pass RATE_LIMIT_POLICY_CLOSES_PER_ADDRESS; another address is not.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { createStack, type Backend, type TestStack } from './support/stack.js';
import { TestClient } from './support/client.js';
import { sleep, waitFor, within } from './support/wait.js';
import type { RunningNode } from '../app/node.js';
import { RateLimiter } from '../server/rate-limits/index.js';
import { createLogger } from '../server/logger.js';
import { uniquePrefix, testRedis } from './support/database.js';
import { startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';

interface Ctx {
  cluster?: ThrowawayRedisCluster;
  stacks: TestStack[];
  clients: TestClient[];
}

interface Answer {
  /** 101 when upgraded; the HTTP status of a plain refusal; 0 for a refusal by close. */
  status: number;
  ms: number;
  body?: any;
  retryAfter?: string;
  close?: { code: number; reason: string; frames: any[] };
}

/** One handshake as `sub`: plain (HTTP refusals), or browser-style (chat.v1: refusals by close); from `localAddress` if given. */
function handshake(url: string, token: string, options: { browser?: boolean; localAddress?: string } = {}): Promise<Answer> {
  const started = performance.now();
  return within(
    new Promise<Answer>((resolve, reject) => {
      const ws = options.browser
        ? new WebSocket(url, ['chat.v1', `bearer.${token}`], { localAddress: options.localAddress })
        : new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, localAddress: options.localAddress });
      const frames: any[] = [];
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data));
        frames.push(frame);
        // An opened socket greets with session.ready; a refusal by close sends its error frame first.
        if (frame.type === 'session.ready') {
          ws.terminate();
          resolve({ status: 101, ms: performance.now() - started });
        }
      });
      ws.once('close', (code, reason) => resolve({ status: 0, ms: performance.now() - started, close: { code, reason: reason.toString(), frames } }));
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, body: JSON.parse(text), retryAfter: res.headers['retry-after'] as string | undefined }));
      });
      ws.once('error', (error) => {
        if (!/Unexpected server response/.test(error.message)) reject(error);
      });
    }),
    5_000,
    'an answer to the handshake',
  );
}

/** Opens a socket of `token` and sends invalid frames until it is closed for policy (BAD_FRAME_LIMIT is 20). */
async function closeForPolicy(ctx: Ctx, url: string, token: string): Promise<void> {
  const client = await TestClient.connect(url, { token });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  for (let i = 0; i < 21; i++) client.send('not json');
  assert.is(await client.waitClose(), 4008);
}

/** The answer to a handshake once it is a refusal (a policy close is counted a moment after the close is sent). */
async function refusal(url: string, token: string, options: { browser?: boolean } = {}): Promise<Answer> {
  let answer: Answer | undefined;
  await waitFor(async () => (answer = await handshake(url, token, options)).status !== 101, 8_000, 'the handshake to be refused');
  return answer!;
}

const USER_REFUSAL = /^This user's sockets keep being closed for invalid or refused frames \(4008\): new connections are refused for a while, longer each time\. Retry in \d+(\.\d)? m?s\.$/;
const ADDRESS_REFUSAL = /^Sockets from this address keep being closed for invalid or refused frames \(4008\): new connections are refused for a while, longer each time\./;

for (const backend of ['redis', 'cluster', 'embedded'] as Array<Backend | 'cluster'>) {
  const test = suite<Ctx>(`policy closes (${backend})`);
  const shared = backend !== 'embedded';

  test.before(async (ctx) => {
    ctx.stacks = [];
    ctx.clients = [];
    if (backend === 'cluster') ctx.cluster = await startThrowawayRedisCluster();
  });
  test.after.each((ctx) => {
    for (const client of ctx.clients.splice(0)) client.close();
  });
  test.after(async (ctx) => {
    for (const stack of ctx.stacks) await stack.close();
    await ctx.cluster?.close();
  });

  /** A fresh stack (its own Redis prefix, or its own process memory) with `gateways` nodes. */
  async function gateways(ctx: Ctx, env: Record<string, string>, count: number): Promise<{ stack: TestStack; urls: string[] }> {
    const stack = backend === 'cluster'
      ? await createStack({ backend: 'redis', env: { REDIS_URL: '', REDIS_CLUSTER_NODES: ctx.cluster!.nodesSetting } })
      : await createStack({ backend });
    ctx.stacks.push(stack);
    const nodes: RunningNode[] = [];
    for (let i = 0; i < count; i++) nodes.push(await stack.start({ gateway: true, worker: backend === 'embedded' }, env));
    return { stack, urls: nodes.map((node) => stack.wsUrl(node)) };
  }

  test("a user closed for policy twice is refused, on every gateway, for longer the next time; others are not", async (ctx) => {
    const env = { RATE_LIMIT_POLICY_BLOCK_S: '2', RATE_LIMIT_POLICY_BLOCK_MAX_S: '4', RATE_LIMIT_POLICY_CLOSES_PER_ADDRESS: '0' };
    const { stack, urls } = await gateways(ctx, env, shared ? 2 : 1);
    const [a, b = a] = urls as [string, string?];
    const token = await stack.token('repeat');

    await closeForPolicy(ctx, a, token);
    assert.is((await handshake(a, token)).status, 101, 'the first policy close is forgiven: back at once');
    await closeForPolicy(ctx, a, token);

    const refused = await refusal(b!, token);
    assert.is(refused.status, 429, shared ? 'refused on the other gateway too' : 'refused');
    assert.equal([refused.body.code, refused.body.retryable], ['rate_limited', true]);
    assert.match(refused.body.message, USER_REFUSAL);
    assert.ok(refused.ms >= 900, `held about a second before the answer (${refused.ms.toFixed(0)} ms)`);
    const firstWait = refused.body.retry_after_ms;
    assert.ok(firstWait > 0 && firstWait <= 1000, `the 2 s refusal less the second held: ${firstWait} ms`);
    assert.is(refused.retryAfter, '1');

    const browser = await refusal(b!, token, { browser: true });
    assert.is(browser.close?.code, 4008);
    assert.match(browser.close!.reason, /^rate_limited retry_after_ms=\d+$/);
    assert.equal([browser.close!.frames[0]?.type, browser.close!.frames[0]?.payload.code], ['error', 'rate_limited']);
    assert.match(browser.close!.frames[0].payload.message, USER_REFUSAL);

    const other = await handshake(b!, await stack.token('neighbour'));
    assert.is(other.status, 101, 'another user connects');
    assert.ok(other.ms < 900, `not held (${other.ms.toFixed(0)} ms)`);

    // The refusal ends when it said; the user is back, is closed again, and waits longer.
    await sleep(Number(/retry_after_ms=(\d+)/.exec(browser.close!.reason)![1])); // a threshold to pass: the refusal's retry_after_ms
    assert.is((await handshake(b!, token)).status, 101, 'back once the wait is over');
    await closeForPolicy(ctx, b!, token);
    const longer = await refusal(a, token);
    assert.is(longer.status, 429);
    assert.match(longer.body.message, USER_REFUSAL);
    assert.ok(longer.body.retry_after_ms > firstWait + 1000, `4 s this time, less the second held: ${longer.body.retry_after_ms} ms after ${firstWait} ms`);
  });

  test('an address whose users keep being closed for policy is refused; another address is not', async (ctx) => {
    const env = { RATE_LIMIT_POLICY_BLOCK_S: '3', RATE_LIMIT_POLICY_CLOSES_PER_ADDRESS: '2' };
    const { stack, urls } = await gateways(ctx, env, 1);
    const url = urls[0]!;
    // Each user's first policy close is forgiven for the user but counts for the address: the third is one too many.
    for (const sub of ['one', 'two', 'three']) await closeForPolicy(ctx, url, await stack.token(sub));
    const fresh = await stack.token('fresh');
    const refused = await refusal(url, fresh);
    assert.is(refused.status, 429, 'a user that did nothing, from that address');
    assert.match(refused.body.message, ADDRESS_REFUSAL);
    assert.ok(refused.body.retry_after_ms > 1000 && refused.body.retry_after_ms <= 2000, `3 s less the second held: ${refused.body.retry_after_ms} ms`);
    const elsewhere = await handshake(url, fresh, { localAddress: '127.0.0.2' });
    assert.is(elsewhere.status, 101, 'the same user from another address connects');
  });

  test.run();
}

const limiter = suite('policy closes (the limiter, Redis unreachable)');

limiter('policy closes are still counted in process, and no handshake waits on Redis', async () => {
  const limits = { messagesPerMinute: 0, framesPerSecond: 0, connectionsPerUser: 0, runsPerUser: 0, inFlightPerUser: 0, restPerSecond: 0, threadsPerMinute: 0 };
  const rateLimits = await RateLimiter.create({
    limits: { ...limits, policyBlockSeconds: 2, policyBlockMaxSeconds: 2, policyClosesPerAddress: 0 },
    log: createLogger('silent'),
    redis: testRedis(uniquePrefix(), 'redis://127.0.0.1:1'),
  });
  try {
    const user = { workspaceId: 'w', userId: 'u' };
    const started = performance.now();
    assert.is(await rateLimits.checkPolicyCloses(user, '127.0.0.1'), undefined);
    assert.ok(performance.now() - started < 500, `answered without Redis (${(performance.now() - started).toFixed(0)} ms)`);
    for (const socket of [{}, {}]) rateLimits.policyClosed(socket, user);
    let refusal: Awaited<ReturnType<RateLimiter['checkPolicyCloses']>>;
    await waitFor(async () => (refusal = await rateLimits.checkPolicyCloses(user, '127.0.0.1')) !== undefined, 5_000, 'the refusal');
    assert.is(refusal!.code, 'rate_limited');
    assert.match(refusal!.message, USER_REFUSAL);
  } finally {
    await rateLimits.close();
  }
});

limiter.run();
