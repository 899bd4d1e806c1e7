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
import { REDIS_URL, testRedis } from './support/database.js';
import { waitFor } from './support/wait.js';
import { createBroker, decodeBrokerEvents, encodeBrokerEvent, encodeBrokerEvents, publishStoredEvents, threadChannel } from '../broker/index.js';
import pino from 'pino';

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

test('the first live event a new follower sees may follow lost publishes: the gap is filled from the log', async (ctx) => {
  const owner = await connect(ctx, 'first-live');
  const ack = await owner.request('message.send', { content: 'History first [[words:3]]' });
  const { thread_id } = ack.payload;
  await owner.completed(ack.payload.run_id);
  owner.close();
  await waitFor(() => ctx.node.gateway!.fanout.threadCount === 0, 5_000, 'nobody follows the thread');

  const reader = await connect(ctx, 'first-live');
  const sub = await reader.request('thread.subscribe', { thread_id, after_seq: 0 });
  const lastSeq = sub.payload.last_seq as number;
  await reader.until(() => reader.events(thread_id).length === lastSeq, 5_000, 'the history');
  // Past its replay, waiting for the first live event.
  await waitFor(() => ctx.node.gateway!.fanout.followersOf(thread_id)[0]?.mode === 'catching_up', 5_000, 'catching up');
  // Two events are stored; only the second is published (the first publish was lost).
  const draft = (content: string) => ({ type: 'message_created' as const, payload: { message: { id: `m_${content}`, role: 'system' as const, content } } });
  await appendEvent(ctx.stack.db, thread_id, draft('lost'));
  const published = await appendEvent(ctx.stack.db, thread_id, draft('published'));
  const broker = createBroker({ kind: 'redis', redis: testRedis(ctx.stack.prefix) });
  try {
    await broker.publish(threadChannel(thread_id), encodeBrokerEvent(published.seq, published.frame));
  } finally {
    await broker.close();
  }
  await reader.until(() => reader.events(thread_id).length >= lastSeq + 2, 5_000, 'both new events');
  const events = reader.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'no gap, no double');
  assert.equal(events.slice(-2).map((e) => e.payload.message.content), ['lost', 'published']);
  reader.close();
});

test('events stored in one write travel as one broker message, and a follower gets each of them once, in order', async (ctx) => {
  const client = await connect(ctx, 'batched');
  const first = await client.request('message.send', { content: 'First [[words:3]]' });
  const { thread_id } = first.payload;
  await client.completed(first.payload.run_id);
  const before = client.events(thread_id).length;
  const draft = (content: string) => ({ type: 'message_created' as const, payload: { message: { id: `m_${content.length}`, role: 'system' as const, content } } });
  const stored = [];
  for (const content of ['one', 'two\nlines', 'three']) stored.push(await appendEvent(ctx.stack.db, thread_id, draft(content)));
  const heard: string[] = [];
  const listener = new Redis(REDIS_URL);
  const broker = createBroker({ kind: 'redis', redis: testRedis(ctx.stack.prefix) });
  try {
    await listener.subscribe(ctx.stack.prefix + threadChannel(thread_id));
    listener.on('message', (_channel, message: string) => heard.push(message));
    await publishStoredEvents(broker, thread_id, stored, pino({ level: 'silent' }));
    await client.until(() => client.events(thread_id).length >= before + 3, 5_000, 'the three events');
    await waitFor(() => heard.length > 0, 5_000, 'the message');
  } finally {
    await broker.close();
    listener.disconnect();
  }
  assert.is(heard.length, 1, 'one message for the write');
  assert.equal(decodeBrokerEvents(heard[0]!), stored.map(({ seq, frame }) => ({ seq, frame })));
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'no gap, no double');
  assert.equal(events.slice(-3).map((e) => e.payload.message.content), ['one', 'two\nlines', 'three']);
  client.close();
});

test('broker messages: one event keeps the single form, a frame with a newline is not batched, a malformed batch is refused', () => {
  const a = { seq: 7, frame: '{"type":"a"}' };
  const b = { seq: 8, frame: '{"type":"b"}' };
  assert.is(encodeBrokerEvents([a]), encodeBrokerEvent(7, a.frame));
  assert.equal(decodeBrokerEvents(encodeBrokerEvents([a, b])!), [a, b]);
  assert.equal(decodeBrokerEvents(encodeBrokerEvent(7, a.frame)), [a]);
  assert.is(encodeBrokerEvents([a, { seq: 8, frame: '{"x":1}\n' }]), undefined);
  for (const bad of ['batch\n', 'batch\nx\n{}', 'batch\n7', 'x\n{}', '{}']) assert.is(decodeBrokerEvents(bad), undefined, bad);
});

test('messages sent at once to a thread the socket does not follow yet all reach it, from the first on, in order', async (ctx) => {
  const owner = await connect(ctx, 'double-send');
  const threads: string[] = [];
  for (let i = 0; i < 10; i++) {
    const ack = await owner.request('message.send', { content: `Thread ${i} [[words:3]]` });
    await owner.completed(ack.payload.run_id);
    threads.push(ack.payload.thread_id);
  }
  owner.close();
  // Another socket of the same user, following none of them, sends three messages to each at once.
  const sender = await connect(ctx, 'double-send');
  const acks = await Promise.all(
    threads.flatMap((thread_id) => [1, 2, 3].map((n) => sender.request('message.send', { thread_id, content: `Again ${n} [[words:3]]` }))),
  );
  assert.ok(acks.every((a) => a.type === 'ack'), JSON.stringify(acks.filter((a) => a.type !== 'ack')));
  for (const ack of acks) await sender.completed(ack.payload.run_id, 20_000);
  for (const thread_id of threads) {
    const stored = await ctx.stack.db.selectFrom('events').select(['seq', 'type']).where('thread_id', '=', thread_id).orderBy('seq').execute();
    const firstNew = stored.filter((e) => e.type === 'message_created')[1]!.seq; // the first of the new messages
    const got = sender.events(thread_id).map((e) => e.payload.seq);
    assert.equal(got, stored.filter((e) => e.seq >= firstNew).map((e) => e.seq), `thread ${thread_id}: every new message and turn, gap-free`);
  }
  sender.close();
});

test('a send retried from a new socket (same client_message_id) replays the original turn to it', async (ctx) => {
  const first = await connect(ctx, 'retrier');
  const created = await first.request('message.send', { content: 'Start [[words:3]]' });
  const { thread_id } = created.payload;
  await first.completed(created.payload.run_id);
  const original = await first.request('message.send', { thread_id, content: 'Lost ack? [[words:4]]', client_message_id: 'cm-retry-1' });
  await first.completed(original.payload.run_id);
  first.close();
  const second = await connect(ctx, 'retrier');
  const retry = await second.request('message.send', { thread_id, content: 'Lost ack? [[words:4]]', client_message_id: 'cm-retry-1' });
  assert.is(retry.payload.deduplicated, true);
  assert.is(retry.payload.run_id, original.payload.run_id);
  const done = await second.completed(original.payload.run_id);
  assert.is(done.payload.status, 'completed');
  const got = second.events(thread_id);
  assert.is(got[0]!.type, 'message_created', 'from the original message on');
  assert.is(got[0]!.payload.message.id, original.payload.message_id);
  assert.equal(got.map((e) => e.payload.seq), got.map((_, i) => got[0]!.payload.seq + i), 'gap-free');
  second.close();
});

test('after many connects and disconnects, every subscription and connection is released', async (ctx) => {
  const owner = await connect(ctx, 'churn');
  const ack = await owner.request('message.send', { content: 'Churn thread' });
  const { thread_id } = ack.payload;
  await owner.completed(ack.payload.run_id);
  owner.close();
  const token = await ctx.stack.token('churn');
  const gateway = ctx.node.gateway!;
  const round = async () => {
    const clients = await Promise.all(Array.from({ length: 40 }, () => TestClient.connect(ctx.url, { token })));
    await Promise.all(clients.map(async (c) => {
      const sub = await c.request('thread.subscribe', { thread_id, after_seq: 0 });
      assert.equal(sub.type, 'ack');
      await c.completed(ack.payload.run_id);
    }));
    for (const c of clients) c.close();
  };
  // One round first: the database pool grows to its working size (each idle pooled connection
  // has a timer of its own), so what is counted below is only what sockets leave behind.
  await round();
  await waitFor(() => gateway.connectionCount() === 0, 5_000, 'the warm-up round closed');
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const timersBefore = timers();
  const channelsBefore = gateway.fanout.brokerChannelCount;
  // 2,000 sockets. Rounds overlap on purpose: sockets close while the next ones are being
  // upgraded. This also guards the async-upgrade workaround in server/cork-holder.ts (without it,
  // a socket upgraded right after others closed was cut with 1006).
  for (let n = 0; n < 50; n++) await round();
  await waitFor(() => gateway.connectionCount() === 0 && gateway.fanout.threadCount === 0, 5_000, 'connections and threads released');
  await waitFor(() => gateway.connectionSlotCount() === 0, 5_000, 'per-user socket slots released');
  assert.is(gateway.fanout.brokerChannelCount, channelsBefore, 'broker channel refcounts back where they were');
  // Each socket had its token-expiry timers: none is left behind (a little slack for the test's own).
  await waitFor(() => timers() <= timersBefore + 3, 5_000, `timers back to ${timersBefore} (have ${timers()})`);
  // And Redis agrees: nobody on this gateway is subscribed to the thread's channel any more.
  const redis = new Redis(REDIS_URL);
  try {
    const channel = `${ctx.stack.prefix}thread:${thread_id}`;
    const numsub = async () => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]);
    await waitFor(async () => (await numsub()) === 0, 5_000, 'the thread channel to have no subscriber');
    assert.equal(await numsub(), 0, 'no Redis subscription left');
    assert.is(await redis.zcard(`${ctx.stack.prefix}rl:connections:acme:churn`), 0, 'no socket slot left in Redis');
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
