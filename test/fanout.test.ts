/**
 * The gateway's delivery machinery beyond the golden path: filling a seq gap from the log, and
 * returning every per-connection structure to zero after churn. Logs are read as written.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { appendEvent } from '../db/events.repository.js';
import { Redis } from 'ioredis';
import { REDIS_URL } from './support/database.js';
import { waitFor } from './support/wait.js';

const test = suite<StackCtx>('fan-out');
useStack(test, { env: { LOG_LEVEL: 'debug' } });

test('an event stored but never published reaches live followers, in order, from the log', async (ctx) => {
  const client = await connect(ctx, 'gap');
  const first = await client.request('message.send', { content: 'First' });
  const { thread_id } = first.payload;
  await client.completed(first.payload.run_id);
  // A publish that never happened: the event is in the log only.
  const lost = await appendEvent(ctx.stack.db, thread_id, {
    type: 'message_created',
    payload: { message: { id: 'm_lost', role: 'system', content: 'stored, not published' } },
  });
  const second = await client.request('message.send', { content: 'Second', thread_id });
  await client.completed(second.payload.run_id);
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'no gap');
  assert.equal(events[lost.seq - 1]!.payload.message.content, 'stored, not published');
  client.close();
});

test('after many connects and disconnects, every subscription and connection is released', async (ctx) => {
  const owner = await connect(ctx, 'churn');
  const ack = await owner.request('message.send', { content: 'Churn thread' });
  const { thread_id } = ack.payload;
  await owner.completed(ack.payload.run_id);
  owner.close();
  const token = await ctx.stack.token('churn');
  // Rounds overlap on purpose: sockets close while the next ones are being upgraded. This also
  // guards the async-upgrade workaround in server/cork-holder.ts (without it, a socket upgraded
  // right after others closed was cut with 1006).
  for (let round = 0; round < 10; round++) {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(ctx.url, { token })));
    await Promise.all(clients.map(async (c) => {
      const sub = await c.request('thread.subscribe', { thread_id, after_seq: 0 });
      assert.equal(sub.type, 'ack');
      await c.completed(ack.payload.run_id);
    }));
    for (const c of clients) c.close();
  }
  const gateway = ctx.node.gateway!;
  await waitFor(() => gateway.connectionCount() === 0 && gateway.fanout.threadCount === 0, 5_000, 'connections and threads released');
  // And Redis agrees: nobody on this gateway is subscribed to the thread's channel any more.
  const redis = new Redis(REDIS_URL);
  try {
    const channel = `${ctx.stack.prefix}thread:${thread_id}`;
    const numsub = async () => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]);
    const deadline = Date.now() + 5_000;
    while ((await numsub()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(await numsub(), 0, 'no Redis subscription left');
  } finally {
    redis.disconnect();
  }
});

test('logs are JSON lines carrying connection, user, thread and run ids, and never a token', async (ctx) => {
  const client = await connect(ctx, 'logged');
  const ack = await client.request('message.send', { content: 'Log me' });
  await client.completed(ack.payload.run_id);
  client.close();
  const token = await ctx.stack.token('logged');
  const text = JSON.stringify(ctx.stack.logs);
  const signature = token.split('.')[2]!;
  assert.not.ok(text.includes(signature), 'no token in the logs');
  const connected = ctx.stack.logs.find((l) => l.msg === 'connected' && l.user_id === 'logged');
  assert.ok(connected?.connection_id, 'connection lines carry connection_id and user_id');
  const finished = ctx.stack.logs.find((l) => l.msg === 'run finished' && l.run_id === ack.payload.run_id);
  assert.ok(finished, 'the run has a log line');
  assert.equal(finished!.thread_id, ack.payload.thread_id);
  assert.equal(finished!.status, 'completed');
});

test.run();
