/**
 * Busy policies: what happens to a message sent while a run is active on its thread. `enqueue`
 * runs turns strictly one after another (asserted from the events: seq and timestamps), `reject`
 * refuses with `thread_busy` and stores nothing, `interrupt` cancels what is active (keeping the
 * partial text) and then runs. The agent's busy_policy applies when on_busy is absent. Finally two
 * worker PROCESSES compete for one thread's turns and still never overlap them.
 */
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, TestStack } from './support/stack.js';
import type { TestClient, Frame } from './support/client.js';
import { rest } from './support/rest-client.js';
import { connect, redisOnlyTest, useStack, type StackCtx as Ctx } from './support/fixture.js';
import { cleanEnv, run, type Child } from './support/process.js';
import { signToken } from '../server/auth.js';
import { ErrorCodes } from '../protocol/codes.js';

/** A new thread (optionally bound to an agent) that the client already follows from seq 0. */
async function followedThread(client: TestClient, agentId?: string): Promise<string> {
  const created = await client.request('thread.create', agentId ? { agent_id: agentId } : {});
  assert.equal(created.type, 'ack', JSON.stringify(created));
  const threadId = created.payload.id as string;
  const sub = await client.request('thread.subscribe', { thread_id: threadId, after_seq: 0 });
  assert.equal(sub.type, 'ack', JSON.stringify(sub));
  return threadId;
}

const eventOf = (events: Frame[], type: string, runId: string) => {
  const found = events.find((e) => e.type === type && e.payload.run_id === runId);
  assert.ok(found, `${type} of ${runId}`);
  return found!;
};
const deltas = (client: TestClient, runId: string) =>
  client.frames.filter((f) => f.type === 'message_delta' && f.payload.run_id === runId);

function assertGapless(events: Frame[], from = 1): void {
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + from), 'seq runs without gaps or duplicates');
}

/**
 * The runs took turns: in the order their messages were stored, each run's agent_started comes
 * after the previous run's agent_completed (by seq and by timestamp), and nothing of another run
 * but its message_created is written while one runs.
 */
function assertOneAfterAnother(events: Frame[], runIds: string[]): string[] {
  const order = [...runIds].sort((x, y) => eventOf(events, 'message_created', x).payload.seq - eventOf(events, 'message_created', y).payload.seq);
  for (let i = 0; i < order.length; i++) {
    const started = eventOf(events, 'agent_started', order[i]!);
    const completed = eventOf(events, 'agent_completed', order[i]!);
    const inside = events.filter((e) => e.payload.seq > started.payload.seq && e.payload.seq < completed.payload.seq);
    const intruders = inside.filter((e) => e.payload.run_id !== order[i] && e.type !== 'message_created');
    assert.equal(intruders, [], `nothing of another run is written while ${order[i]} runs`);
    if (i === 0) continue;
    const previous = eventOf(events, 'agent_completed', order[i - 1]!);
    assert.ok(started.payload.seq > previous.payload.seq, `run ${i + 1} starts (seq ${started.payload.seq}) after run ${i} completed (seq ${previous.payload.seq})`);
    assert.ok(
      Date.parse(started.payload.timestamp) >= Date.parse(previous.payload.timestamp),
      `run ${i + 1} starts at ${started.payload.timestamp}, not before run ${i} completed at ${previous.payload.timestamp}`,
    );
  }
  return order;
}

/** The stored runs, in the order they started, never overlap in time. */
async function assertStoredRunsDisjoint(stack: TestStack, order: string[]): Promise<void> {
  const rows = await stack.db.selectFrom('runs').select(['id', 'status', 'started_at', 'finished_at', 'attempt']).where('id', 'in', order).execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (let i = 0; i < order.length; i++) {
    const row = byId.get(order[i]!)!;
    assert.equal(row.status, 'completed');
    assert.equal(row.attempt, 1, 'claimed exactly once');
    assert.ok(row.started_at && row.finished_at && row.finished_at >= row.started_at);
    if (i > 0) {
      const previous = byId.get(order[i - 1]!)!;
      assert.ok(row.started_at! >= previous.finished_at!, `stored run ${i + 1} started after run ${i} finished`);
    }
  }
}

function busySuite(backend: Backend): void {
  const test = suite<Ctx>(`busy policies (${backend})`);

  const redisOnly = redisOnlyTest(test, backend);
  useStack(test, { backend });

  test('enqueue (the default): two messages sent back-to-back both complete, strictly one after another', async (ctx) => {
    const client = await connect(ctx, 'enqueuer');
    const thread_id = await followedThread(client);
    const [a, b] = await Promise.all([
      client.request('message.send', { thread_id, content: 'First of two [[words:20]] [[delay:15]]' }),
      client.request('message.send', { thread_id, content: 'Second of two [[words:10]] [[delay:5]]' }),
    ]);
    assert.equal([a.type, b.type], ['ack', 'ack'], JSON.stringify([a, b]));
    const runs = [a.payload.run_id as string, b.payload.run_id as string];
    for (const runId of runs) assert.equal((await client.completed(runId)).payload.status, 'completed');
    const events = client.events(thread_id);
    assertGapless(events);
    const order = assertOneAfterAnother(events, runs);
    await assertStoredRunsDisjoint(ctx.stack, order);
  });

  redisOnly('reject: a message sent while a run is active gets thread_busy (retryable) and nothing is stored for it', async (ctx) => {
    const client = await connect(ctx, 'rejecter');
    const token = await ctx.stack.token('rejecter');
    const thread_id = await followedThread(client);
    const first = await client.request('message.send', { thread_id, content: 'Keep the thread busy [[words:40]] [[delay:20]]' });
    const refused = await client.request('message.send', { thread_id, content: 'Refused while busy', on_busy: 'reject' });
    assert.equal(refused.type, 'error', JSON.stringify(refused));
    assert.equal(refused.payload.code, 'thread_busy');
    assert.equal(ErrorCodes.thread_busy.retryable, true, 'thread_busy is a retryable code');
    const overRest = await rest(ctx.base, 'POST', `/v1/threads/${thread_id}/messages`, {
      token,
      body: { content: 'Refused over REST', on_busy: 'reject' },
    });
    assert.equal(overRest.status, 409, JSON.stringify(overRest.body));
    assert.equal(overRest.body.code, 'thread_busy');

    const done = await client.completed(first.payload.run_id);
    assert.equal(done.payload.status, 'completed');
    const events = client.events(thread_id);
    assertGapless(events);
    assert.equal(new Set(events.map((e) => e.payload.run_id)), new Set([first.payload.run_id]), 'only the first run has events');
    const runs = await ctx.stack.db.selectFrom('runs').select('id').where('thread_id', '=', thread_id).execute();
    assert.equal(runs.map((r) => r.id), [first.payload.run_id], 'no run was stored for the refused messages');
    const messages = await ctx.stack.db.selectFrom('messages').select(['role', 'content']).where('thread_id', '=', thread_id).orderBy('created_at').execute();
    assert.equal(messages.map((m) => m.role), ['user', 'assistant']);
    assert.not.ok(messages.some((m) => m.content.startsWith('Refused')), 'no message was stored for the refused sends');
    const stored = await ctx.stack.db.selectFrom('events').select('seq').where('thread_id', '=', thread_id).execute();
    const thread = await ctx.stack.db.selectFrom('threads').select('last_seq').where('id', '=', thread_id).executeTakeFirstOrThrow();
    assert.equal([stored.length, thread.last_seq], [events.length, events.length], 'no event, no seq taken');

    // Retryable: the same send succeeds once the thread is idle.
    const retried = await client.request('message.send', { thread_id, content: 'Refused while busy', on_busy: 'reject' });
    assert.equal(retried.type, 'ack', JSON.stringify(retried));
    assert.equal((await client.completed(retried.payload.run_id)).payload.status, 'completed');
  });

  test('interrupt: the running turn ends cancelled keeping its partial text, then the new one runs to completion', async (ctx) => {
    const client = await connect(ctx, 'interrupter');
    const thread_id = await followedThread(client);
    const first = await client.request('message.send', { thread_id, content: 'Talk for a long while [[words:400]] [[delay:15]]' });
    const runA = first.payload.run_id as string;
    await client.until(() => deltas(client, runA).length >= 2, 10_000, 'the first run streaming');
    const second = await client.request('message.send', { thread_id, content: 'Stop, answer this instead [[words:8]]', on_busy: 'interrupt' });
    assert.equal(second.type, 'ack', JSON.stringify(second));
    const runB = second.payload.run_id as string;

    const doneA = await client.completed(runA, 5_000);
    assert.equal(doneA.payload.status, 'cancelled', JSON.stringify(doneA.payload));
    const partial = doneA.payload.message.content as string;
    assert.equal(deltas(client, runA).map((d) => d.payload.delta).join(''), partial, 'partial text = the deltas streamed');
    const echo = 'You said: Talk for a long while';
    assert.ok(partial.length > 0 && (partial.startsWith(echo) || echo.startsWith(partial)), `the start of the answer: ${partial}`);
    assert.ok(partial.split(' ').length < 400, 'the answer was cut short');
    const doneB = await client.completed(runB);
    assert.equal(doneB.payload.status, 'completed', JSON.stringify(doneB.payload));
    assert.ok(doneB.payload.message.content.startsWith('You said: Stop, answer this instead'));

    const events = client.events(thread_id);
    assertGapless(events);
    const startedB = eventOf(events, 'agent_started', runB);
    assert.ok(startedB.payload.seq > doneA.payload.seq, 'the new turn starts only after the interrupted one ended');
    assert.ok(Date.parse(startedB.payload.timestamp) >= Date.parse(doneA.payload.timestamp));
    const runA_ = await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', runA).executeTakeFirstOrThrow();
    assert.equal(runA_.status, 'cancelled');
    const stored = await ctx.stack.db.selectFrom('messages').select('content').where('id', '=', doneA.payload.message.id).executeTakeFirstOrThrow();
    assert.equal(stored.content, partial, 'the partial text is stored');
  });

  redisOnly('interrupt also cancels a queued turn, which never starts', async (ctx) => {
    const client = await connect(ctx, 'interrupter-2');
    const thread_id = await followedThread(client);
    const a = await client.request('message.send', { thread_id, content: 'Running one [[words:400]] [[delay:15]]' });
    const b = await client.request('message.send', { thread_id, content: 'Queued one [[words:5]]' });
    await client.until(() => deltas(client, a.payload.run_id).length >= 1, 10_000, 'the first run streaming');
    const c = await client.request('message.send', { thread_id, content: 'Interrupting one [[words:5]]', on_busy: 'interrupt' });
    const [doneA, doneB, doneC] = [await client.completed(a.payload.run_id, 5_000), await client.completed(b.payload.run_id, 5_000), await client.completed(c.payload.run_id)];
    assert.equal([doneA.payload.status, doneB.payload.status, doneC.payload.status], ['cancelled', 'cancelled', 'completed']);
    assert.equal(doneB.payload.message.content, '');
    assert.ok(doneA.payload.message.content.length > 0, 'the running turn keeps its partial text');
    const events = client.events(thread_id);
    assertGapless(events);
    assert.equal(events.filter((e) => e.payload.run_id === b.payload.run_id).map((e) => e.type), ['message_created', 'agent_completed']);
    assert.ok(eventOf(events, 'agent_started', c.payload.run_id).payload.seq > doneA.payload.seq);
  });

  redisOnly("the agent's busy_policy applies when on_busy is absent; on_busy overrides it", async (ctx) => {
    const admin = await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 600, extra: { role: 'admin' } });
    const strict = await rest(ctx.base, 'POST', '/v1/agents', { token: admin, body: { name: 'Strict', busy_policy: 'reject' } });
    assert.equal(strict.status, 201, JSON.stringify(strict.body));
    assert.equal(strict.body.busy_policy, 'reject');
    const impatient = await rest(ctx.base, 'POST', '/v1/agents', { token: admin, body: { name: 'Impatient', busy_policy: 'interrupt' } });
    assert.equal(impatient.status, 201, JSON.stringify(impatient.body));

    const client = await connect(ctx, 'agent-user');
    // reject by default
    const strictThread = await followedThread(client, strict.body.id);
    const a = await client.request('message.send', { thread_id: strictThread, content: 'Strict first [[words:30]] [[delay:20]]' });
    assert.equal(a.type, 'ack', JSON.stringify(a));
    const refused = await client.request('message.send', { thread_id: strictThread, content: 'Strict second' });
    assert.equal(refused.type, 'error', JSON.stringify(refused));
    assert.equal(refused.payload.code, 'thread_busy');
    const queued = await client.request('message.send', { thread_id: strictThread, content: 'Strict third [[words:5]]', on_busy: 'enqueue' });
    assert.equal(queued.type, 'ack', 'on_busy overrides the agent policy');
    for (const frame of [a, queued]) assert.equal((await client.completed(frame.payload.run_id)).payload.status, 'completed');
    const strictEvents = client.events(strictThread);
    assertGapless(strictEvents);
    assertOneAfterAnother(strictEvents, [a.payload.run_id, queued.payload.run_id]);
    assert.equal(eventOf(strictEvents, 'agent_started', a.payload.run_id).payload.agent_name, 'Strict');

    // interrupt by default
    const impatientThread = await followedThread(client, impatient.body.id);
    const x = await client.request('message.send', { thread_id: impatientThread, content: 'Impatient first [[words:400]] [[delay:15]]' });
    await client.until(() => deltas(client, x.payload.run_id).length >= 1, 10_000, 'the impatient run streaming');
    const y = await client.request('message.send', { thread_id: impatientThread, content: 'Impatient second [[words:5]]' });
    assert.equal(y.type, 'ack');
    assert.equal((await client.completed(x.payload.run_id, 5_000)).payload.status, 'cancelled');
    assert.equal((await client.completed(y.payload.run_id)).payload.status, 'completed');
  });

  test.run();
}

busySuite('redis');
busySuite('embedded');

// ---- two worker processes ----------------------------------------------------------------------

interface ProcCtx extends Ctx {
  workers: Child[];
}

const procs = suite<ProcCtx>('busy policies: two worker processes on one thread');

useStack(procs, {
  backend: 'redis',
  roles: { gateway: true, worker: false },
  setup: (ctx) => {
    ctx.workers = [];
  },
  teardown: (ctx) => {
    for (const worker of ctx.workers) worker.kill('SIGKILL');
  },
});

procs('enqueue across two worker processes: six back-to-back turns all complete and never overlap', async (ctx) => {
  const env = cleanEnv({ ...ctx.stack.env, WORKER_CONCURRENCY: '4', LOG_LEVEL: 'info' });
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'JWT_SECRET', 'OPENAI_BASE_URL', 'OPENAI_API_KEY']) {
    assert.ok(env[key], `${key} is passed to the workers`);
  }
  ctx.workers.push(
    run(process.execPath, ['--import', 'tsx', 'app/main.ts', 'worker'], env),
    run(process.execPath, ['--import', 'tsx', 'app/main.ts', 'worker'], env),
  );
  await Promise.all(ctx.workers.map((worker) => worker.waitFor(/"msg":"started"/, 30_000)));

  const client = await connect(ctx, 'two-procs');
  const thread_id = await followedThread(client);
  const tag = randomBytes(3).toString('hex');
  const acks = await Promise.all(
    Array.from({ length: 6 }, (_, i) => client.request('message.send', { thread_id, content: `Turn ${i + 1} ${tag} [[words:10]] [[delay:8]]` })),
  );
  assert.ok(acks.every((a) => a.type === 'ack'), JSON.stringify(acks));
  const runIds = acks.map((a) => a.payload.run_id as string);
  for (const runId of runIds) {
    const done = await client.completed(runId, 30_000);
    assert.equal(done.payload.status, 'completed', JSON.stringify(done.payload));
  }
  const events = client.events(thread_id);
  assertGapless(events);
  const order = assertOneAfterAnother(events, runIds);
  await assertStoredRunsDisjoint(ctx.stack, order);

  // Each run finished in exactly one of the two processes (their logs say which).
  const finishedIn = (worker: Child) =>
    worker.stdout().split('\n').filter((line) => line.includes('"msg":"run finished"')).map((line) => JSON.parse(line).run_id as string);
  const finished = ctx.workers.flatMap(finishedIn).filter((id) => runIds.includes(id));
  assert.equal(finished.sort(), [...runIds].sort(), 'each run finished once, in one of the worker processes');

  for (const worker of ctx.workers) worker.kill('SIGTERM');
  const codes = await Promise.all(ctx.workers.map((worker) => worker.exited(15_000)));
  assert.equal(codes, [0, 0], `workers exit cleanly on SIGTERM: ${ctx.workers.map((w) => w.stderr().slice(-500)).join('\n')}`);
});

procs.run();
