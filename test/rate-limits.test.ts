/**
 * Rate limits on one Redis node (rate-limits.case.ts), and the embedded (in-process) limiter.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createStack, type TestStack } from './support/stack.js';
import type { TestClient } from './support/client.js';
import { rest, restBase } from './support/rest-client.js';
import { waitFor } from './support/wait.js';
import type { RunningNode } from '../app/node.js';
import { assertRateLimited, connect, rateLimitsSuite, upgrade } from './rate-limits.case.js';

rateLimitsSuite('redis');

// Embedded mode: the same limits, counted in process.

const embedded = suite<{ stack: TestStack; node: RunningNode; clients: TestClient[] }>('rate limits (embedded)');

embedded.before(async (ctx) => {
  ctx.stack = await createStack({
    backend: 'embedded',
    env: { RATE_LIMIT_MESSAGES_PER_MIN: '3', RATE_LIMIT_CONNECTIONS_PER_USER: '2', RATE_LIMIT_RUNS_PER_USER: '0', RATE_LIMIT_FRAMES_PER_SEC: '50' },
  });
  ctx.node = await ctx.stack.start();
  ctx.clients = [];
});
embedded.after(async (ctx) => {
  for (const client of ctx.clients.splice(0)) client.close();
  await ctx.stack?.close();
});

embedded('messages per minute and open sockets per user, in process', async (ctx) => {
  const token = await ctx.stack.token('solo');
  const client = await connect(ctx, ctx.node, 'solo');
  const first = await client.request('message.send', { content: 'one' });
  assert.is(first.type, 'ack');
  assert.is((await client.request('message.send', { content: 'two' })).type, 'ack');
  assert.is((await client.request('message.send', { content: 'three' })).type, 'ack');
  const refused = await client.request('message.send', { content: 'four' });
  assertRateLimited(refused.payload, /^Too many messages: at most 3 per minute\. Retry in \d+ s\.$/, 60_000);
  const overRest = await rest(restBase(ctx.node), 'POST', `/v1/threads/${first.payload.thread_id}/messages`, { token, body: { content: 'four, over REST' } });
  assert.is(overRest.status, 429);
  assert.ok(Number(overRest.headers.get('retry-after')) >= 1);

  await connect(ctx, ctx.node, 'solo');
  const third = await upgrade(ctx.stack.wsUrl(ctx.node), token);
  assert.is(third.status, 429);
  assertRateLimited(third.body, /at most 2 per user/, 1000);
  await client.closeGracefully();
  let again: Awaited<ReturnType<typeof upgrade>> | undefined;
  await waitFor(async () => {
    again = await upgrade(ctx.stack.wsUrl(ctx.node), token);
    return again.status === 101;
  }, 2_000, 'the closed socket to free its slot');
  again!.ws!.terminate();
});

embedded.run();
