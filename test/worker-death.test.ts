/**
 * A worker process killed with SIGKILL mid-turn (Redis + BullMQ): BullMQ re-delivers the run's
 * job once the dead worker's lock expires, another worker takes the run over with a new attempt
 * and a new message id (announced by agent_thinking {restarted}), and the client sees exactly one
 * agent_completed, gap-free seqs, and a text it can rebuild exactly.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { startNode, type Child } from './support/process.js';

interface Ctx extends StackCtx {
  workers: Child[];
}

const test = suite<Ctx>('worker death');

useStack(test, {
  roles: { gateway: true, worker: false },
  setup: (ctx) => {
    ctx.workers = [];
  },
  teardown: async (ctx) => {
    for (const worker of ctx.workers) worker.kill('SIGKILL');
  },
});

function startWorker(ctx: Ctx): Child {
  const worker = startNode('worker', { ...ctx.stack.env, LOG_LEVEL: 'info' });
  ctx.workers.push(worker);
  return worker;
}

test('SIGKILL mid-turn: another worker takes the run over; one agent_completed; the text rebuilds exactly', async (ctx) => {
  const first = startWorker(ctx);
  await first.waitFor(/"msg":"started"/, 30_000);
  const client = await connect(ctx, 'survivor');
  const ack = await client.request('message.send', { content: 'A long and slow answer please [[words:300]] [[delay:20]]' });
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');
  first.kill('SIGKILL');
  await first.exited();

  const second = startWorker(ctx);
  await second.waitFor(/"msg":"started"/, 30_000);
  // The dead worker's lock must expire (10 s) and the stalled check run (every 5 s) first.
  const done = await client.completed(run_id, 45_000);
  assert.is(done.payload.status, 'completed');
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'gap-free');
  assert.is(events.filter((e) => e.type === 'agent_completed').length, 1, 'exactly one agent_completed');
  const restart = events.find((e) => e.type === 'agent_thinking' && e.payload.restarted);
  assert.ok(restart, 'the takeover is announced');
  assert.ok(restart!.payload.attempt >= 2);
  assert.is(restart!.payload.message_id, done.payload.message.id, 'the final message is the new attempt\'s');
  // A client rebuilds the text from the deltas after the last reset.
  const after = events.slice(events.indexOf(restart!));
  const rebuilt = after.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
  assert.is(rebuilt, done.payload.message.content);
  assert.ok(after.filter((e) => e.type === 'message_delta').every((e) => e.payload.message_id === done.payload.message.id));
  const stored = await ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run_id).executeTakeFirstOrThrow();
  assert.equal(stored, { status: 'completed', attempt: restart!.payload.attempt });

  // The thread is not stuck: the next turn runs.
  const next = await client.request('message.send', { content: 'And now?', thread_id });
  assert.is((await client.completed(next.payload.run_id, 20_000)).payload.status, 'completed');
});

test('a frozen worker (SIGSTOP) loses the run to another; woken up, it cannot write: one agent_completed, gap-free', async (ctx) => {
  // Only the worker about to be frozen may hold the run.
  for (const worker of ctx.workers) worker.kill('SIGKILL');
  await Promise.all(ctx.workers.map((worker) => worker.exited()));
  const frozen = startWorker(ctx);
  await frozen.waitFor(/"msg":"started"/, 30_000);
  const client = await connect(ctx, 'frozen');
  const ack = await client.request('message.send', { content: 'A long, patient answer please [[words:900]] [[delay:20]]' });
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');
  process.kill(frozen.proc.pid!, 'SIGSTOP');

  const other = startWorker(ctx);
  await other.waitFor(/"msg":"started"/, 30_000);
  // Its BullMQ lock expires (10 s) and the stalled check (5 s) hands the job to the other worker.
  await client.until(() => client.events(thread_id).some((e) => e.type === 'agent_thinking' && e.payload.restarted), 45_000, 'the takeover');
  // The frozen attempt wakes up mid-stream, with writes it believes it still owns.
  process.kill(frozen.proc.pid!, 'SIGCONT');
  const done = await client.completed(run_id, 45_000);
  assert.is(done.payload.status, 'completed');
  // The woken attempt tries its next write, is fenced off and says so; it writes nothing after that.
  await frozen.waitFor(/this attempt stopped writing/, 15_000);
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'gap-free');
  assert.is(events.filter((e) => e.type === 'agent_completed').length, 1, 'exactly one agent_completed');
  const restart = events.find((e) => e.type === 'agent_thinking' && e.payload.restarted)!;
  const after = events.slice(events.indexOf(restart));
  assert.ok(after.filter((e) => e.type === 'message_delta').every((e) => e.payload.message_id === done.payload.message.id), 'no delta of the old attempt after the restart');
  assert.is(after.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join(''), done.payload.message.content);
  const stored = await ctx.stack.db.selectFrom('events').select('seq').where('thread_id', '=', thread_id).execute();
  assert.is(stored.length, events.length, 'nothing was stored that the client did not see');
  assert.match(frozen.stdout(), /this attempt stopped writing/, 'the woken attempt was fenced off');
});

test.run();
