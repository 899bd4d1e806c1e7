/**
 * Redis killed and started again (a throwaway server on its own port, persisting nothing, so it
 * comes back empty: no jobs, no locks, no subscriptions) while a gateway and a worker use it.
 * Postgres is the shared server. The WebSocket does not depend on Redis, so the client's socket
 * stays open throughout; what must hold:
 *  - a turn streaming when Redis dies reaches the client whole: every event once, seq gap-free,
 *    equal to the log, one agent_completed, including the events written while the gateway was
 *    cut off from the broker (the gateway re-syncs followed threads from the log on reconnect);
 *  - a message sent while Redis is down is either refused as retryable (`unavailable`,
 *    retry_after_ms) or acked and then really run once Redis is back (the worker's sweeper
 *    enqueues queued runs that have no job): never acked and forgotten;
 *  - after recovery a fresh socket runs a turn normally; /ready says 503 while Redis is down and
 *    200 after.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunningNode } from '../app/node.js';
import { connect, type StackCtx } from './support/fixture.js';
import { useRestartStack } from './support/restart-fixture.js';
import { RestClient } from './support/rest-client.js';
import { TestClient, type Frame } from './support/client.js';
import { startThrowawayRedis, type ThrowawayRedis } from './support/throwaway.js';
import { assertClientMatchesLog, assertRunRebuilds, ready, readyBecomes } from './support/run-checks.js';
import { sleep } from './support/wait.js';

interface Ctx extends StackCtx {
  redis: ThrowawayRedis;
  /** The worker node (the suite's `node` is the gateway). */
  worker: RunningNode;
}

const test = suite<Ctx>('redis restart');

useRestartStack(test, 'redis', {
  server: startThrowawayRedis,
  stack: (redis) => ({ env: { REDIS_URL: redis.url } }),
  // Two nodes, as deployed: the gateway and the worker meet only through Redis and Postgres.
  roles: { gateway: true, worker: false },
  setup: async (ctx) => {
    ctx.worker = await ctx.stack.start({ gateway: false, worker: true });
  },
});

const deltasOf = (client: TestClient, threadId: string) => client.events(threadId).filter((e) => e.type === 'message_delta').length;

/** Milliseconds of `timestamp` (the log's clock: Postgres on this machine). */
const at = (event: Frame) => Date.parse(event.payload.timestamp);

test('Redis killed mid-turn and started 4 s later: the streaming client gets the whole run, once, equal to the log', async (ctx) => {
  const client = await connect(ctx, 'streamer');
  const ack = await client.request('message.send', { content: 'A long and slow answer please [[words:300]] [[delay:20]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  const { thread_id, run_id } = ack.payload;
  await client.until(() => deltasOf(client, thread_id) >= 3, 20_000, 'some deltas');

  const stoppedAt = Date.now();
  await ctx.redis.stop('SIGKILL');
  const whileDown = await ready(ctx.base);
  assert.is(whileDown.status, 503, `/ready while Redis is down: ${JSON.stringify(whileDown.body)}`);
  await sleep(Math.max(0, stoppedAt + 4_000 - Date.now())); // the outage's length is the point
  const restartedAt = Date.now();
  await ctx.redis.start();

  const done = await client.completed(run_id, 60_000);
  assert.is(client.closeCode, undefined, 'the socket stayed open');
  const events = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
  const { completed, restarts } = assertRunRebuilds(events, run_id);
  assert.is(completed, done);
  assert.is(done.payload.status, 'completed', `the turn completed: ${JSON.stringify(done.payload.error ?? {})}`);
  const stored = await ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run_id).executeTakeFirstOrThrow();
  assert.is(stored.status, 'completed');
  if (restarts.length > 0) assert.is(stored.attempt, restarts[restarts.length - 1]!.payload.attempt);
  // The fault really hit the turn: events were written while the broker was gone (these can only
  // have reached the client through the gateway's re-sync from the log).
  const writtenWhileDown = events.filter((e) => at(e) > stoppedAt && at(e) < restartedAt);
  assert.ok(writtenWhileDown.length > 0, 'some events were written while Redis was down');
  assert.ok(events.some((e) => at(e) > restartedAt + 200), 'and the turn went on after Redis came back');
});

test('message.send while Redis is down: refused as retryable, or acked and then really run once Redis is back', async (ctx) => {
  const client = await connect(ctx, 'sender');
  // A thread this socket already follows, from a turn before the outage.
  const first = await client.request('message.send', { content: 'Hello there [[words:5]]' });
  assert.is(first.type, 'ack');
  const followed = first.payload.thread_id as string;
  await client.completed(first.payload.run_id);

  const stoppedAt = Date.now();
  await ctx.redis.stop('SIGKILL');
  assert.is((await ready(ctx.base)).status, 503, '/ready while Redis is down');
  const sends = [
    { content: 'Sent while Redis is down, on a followed thread [[words:8]]', thread_id: followed, client_message_id: 'redis-down-1' },
    { content: 'Sent while Redis is down, on a new thread [[words:8]]', client_message_id: 'redis-down-2' },
  ];
  const answers = await Promise.all(sends.map((payload) => client.request('message.send', payload, 20_000)));
  for (const answer of answers) {
    if (answer.type === 'error') {
      assert.is(answer.payload.code, 'unavailable', `a refusal is retryable: ${JSON.stringify(answer.payload)}`);
      assert.type(answer.payload.retry_after_ms, 'number', 'a refusal says when to retry');
      assert.ok(answer.payload.retry_after_ms > 0);
    } else {
      assert.is(answer.type, 'ack');
    }
  }
  assert.ok(!ctx.redis.running);
  // Down for 4 s, and in any case past the answers (the outage's length is the point).
  await sleep(Math.max(500, stoppedAt + 4_000 - Date.now()));
  const restartedAt = Date.now();
  await ctx.redis.start();

  // An ack during the outage stored the message: the gateway re-syncs the followed thread from the
  // log as soon as the broker is back, long before the run can start (the sweeper only enqueues
  // runs older than 10 s), so the client sees its message at once.
  if (answers[0]!.type === 'ack') {
    const messageId = answers[0]!.payload.message_id;
    await client.next((f) => f.type === 'message_created' && f.payload.message.id === messageId, 5_000);
  }
  // A refused send is retried as a client would: same client_message_id, after retry_after_ms.
  const acks: Frame[] = [];
  for (const [i, answer] of answers.entries()) {
    let current = answer;
    const deadline = Date.now() + 20_000;
    while (current.type === 'error') {
      assert.is(current.payload.code, 'unavailable', JSON.stringify(current.payload));
      assert.ok(Date.now() < deadline, 'a refused send is accepted again within 20 s of Redis coming back');
      await sleep(current.payload.retry_after_ms ?? 1_000); // a threshold to pass: the refusal's retry_after_ms
      current = await client.request('message.send', sends[i]!, 20_000);
    }
    acks.push(current);
  }

  for (const [i, ack] of acks.entries()) {
    const { thread_id, run_id } = ack.payload;
    const done = await client.completed(run_id, 45_000);
    assert.is(done.payload.status, 'completed', `send ${i + 1} ran to completion: ${JSON.stringify(done.payload.error ?? {})}`);
    const events = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
    assertRunRebuilds(events, run_id);
    // One message and one run for the client_message_id, however many tries it took.
    const runs = await ctx.stack.db
      .selectFrom('messages')
      .innerJoin('runs', 'runs.id', 'messages.run_id')
      .select(['runs.id', 'runs.status'])
      .where('messages.client_message_id', '=', sends[i]!.client_message_id)
      .where('messages.role', '=', 'user')
      .execute();
    assert.equal(runs, [{ id: run_id, status: 'completed' }], `send ${i + 1}: one run`);
  }
  assert.is(client.closeCode, undefined, 'the socket stayed open');
  await readyBecomes(ctx.base, 200, 10_000);
  assert.ok(Date.now() - restartedAt < 60_000);
});

test('after recovery: /ready is 200, a ticket is issued and redeemed, and a fresh socket runs a turn', async (ctx) => {
  await readyBecomes(ctx.base, 200, 10_000);
  const token = await ctx.stack.token('newcomer');
  const issued = await new RestClient(ctx.base, token).post('/v1/ws-ticket');
  assert.is(issued.status, 201, JSON.stringify(issued.body));
  const client = await TestClient.connect(`${ctx.url}?ticket=${encodeURIComponent(issued.body.ticket)}`);
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  const ack = await client.request('message.send', { content: 'All good again? [[words:20]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  const done = await client.completed(ack.payload.run_id, 15_000);
  assert.is(done.payload.status, 'completed');
  const events = await assertClientMatchesLog(ctx.stack.db, client, ack.payload.thread_id);
  assertRunRebuilds(events, ack.payload.run_id);
});

test.run();
