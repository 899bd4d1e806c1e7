/**
 * SIGTERM to a worker process (Redis + BullMQ): it stops taking turns, lets the active ones finish
 * within SHUTDOWN_GRACE_MS, and past it hands them back: another worker takes the run over (a new
 * attempt and message id, announced by agent_thinking {restarted}) and finishes it. The stopping
 * worker exits 0, the client sees exactly one agent_completed and gap-free seqs.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { cleanEnv, run, type Child } from './support/process.js';

interface Ctx extends StackCtx {
  workers: Child[];
}

const test = suite<Ctx>('worker shutdown');

useStack(test, {
  roles: { gateway: true, worker: false },
  setup: (ctx) => {
    ctx.workers = [];
  },
  teardown: (ctx) => {
    for (const worker of ctx.workers) worker.kill('SIGKILL');
  },
});

async function startWorker(ctx: Ctx, env: Record<string, string> = {}): Promise<Child> {
  const worker = run(process.execPath, ['--import', 'tsx', 'app/main.ts', 'worker'], cleanEnv({ ...ctx.stack.env, LOG_LEVEL: 'info', ...env }));
  ctx.workers.push(worker);
  await worker.waitFor(/"msg":"started"/, 30_000);
  return worker;
}

function finishedRuns(worker: Child): string[] {
  return worker.stdout().split('\n').filter((l) => l.includes('"msg":"run finished"')).map((l) => JSON.parse(l).run_id);
}

test('a turn that outlives the grace period is handed to another worker and finishes there', async (ctx) => {
  const leaving = await startWorker(ctx, { SHUTDOWN_GRACE_MS: '500' });
  const client = await connect(ctx, 'handover');
  const ack = await client.request('message.send', { content: 'Slowly please [[words:800]] [[delay:20]]' });
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');

  // The second worker starts before the first stops: a rolling deploy.
  const staying = await startWorker(ctx);
  leaving.kill('SIGTERM');
  assert.is(await leaving.exited(20_000), 0, `the leaving worker exits cleanly: ${leaving.stderr().slice(-500)}`);
  assert.match(leaving.stdout(), /run released on shutdown; another worker takes it over/, leaving.stdout().slice(-3000));

  const done = await client.completed(run_id, 30_000);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'gap-free');
  assert.is(events.filter((e) => e.type === 'agent_completed').length, 1, 'exactly one agent_completed');
  const restart = events.find((e) => e.type === 'agent_thinking' && e.payload.restarted);
  assert.ok(restart, 'the takeover is announced');
  assert.is(restart!.payload.message_id, done.payload.message.id);
  const rebuilt = events.slice(events.indexOf(restart!)).filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
  assert.is(rebuilt, done.payload.message.content, 'the text rebuilds from the restart marker');
  await staying.waitFor(/"msg":"run finished"/, 5_000);
  assert.equal(finishedRuns(leaving), [], 'the leaving worker did not finish it');
  assert.equal(finishedRuns(staying), [run_id], 'the staying worker did');
  const stored = await ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run_id).executeTakeFirstOrThrow();
  assert.equal(stored, { status: 'completed', attempt: 2 });
  staying.kill('SIGTERM');
  assert.is(await staying.exited(20_000), 0);
});

test('a turn that fits in the grace period finishes in the stopping worker; no new turn starts there', async (ctx) => {
  const leaving = await startWorker(ctx, { SHUTDOWN_GRACE_MS: '20000' });
  const client = await connect(ctx, 'finisher');
  const ack = await client.request('message.send', { content: 'A short one [[words:60]] [[delay:20]]' });
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).some((e) => e.type === 'message_delta'), 20_000, 'a delta');
  const stopAt = Date.now();
  leaving.kill('SIGTERM');
  // Sent while the worker is stopping: it must not take it.
  const later = await client.request('message.send', { content: 'Another thread [[words:5]]' });
  const done = await client.completed(run_id, 20_000);
  assert.is(done.payload.status, 'completed');
  assert.is(await leaving.exited(20_000), 0);
  assert.ok(Date.now() - stopAt < 15_000, 'it exits as soon as its turn is done, not at the end of the grace period');
  assert.equal(finishedRuns(leaving), [run_id], leaving.stdout().slice(-3000));
  const events = client.events(thread_id);
  assert.not.ok(events.some((e) => e.type === 'agent_thinking' && e.payload.restarted), 'no takeover');

  // The message sent during shutdown waits for a worker, then runs.
  const status = await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', later.payload.run_id).executeTakeFirstOrThrow();
  assert.is(status.status, 'queued');
  const next = await startWorker(ctx);
  assert.is((await client.completed(later.payload.run_id, 30_000)).payload.status, 'completed');
  next.kill('SIGTERM');
  assert.is(await next.exited(20_000), 0);
});

test.run();
