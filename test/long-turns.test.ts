/**
 * Turns longer than the stale threshold (RUN_STALE_MS) on two worker processes (Postgres, Redis,
 * BullMQ): each worker's heartbeat keeps its runs its own, so every turn runs once, with one model
 * request, and completes on its first attempt; the heartbeat is seen moving in the runs table. A
 * worker that really dies still loses its run to the other one, whose own run is left alone.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { cleanEnv, run, type Child } from './support/process.js';
import { sleep, waitFor } from './support/wait.js';
import type { TestClient } from './support/client.js';

interface Ctx extends StackCtx {
  workers: Child[];
}

const STALE_MS = 2_000;
/** About 6 s of streaming: three times the stale threshold. */
const LONG = '[[words:60]] [[delay:100]]';

const test = suite<Ctx>('long turns on two workers');

useStack(test, {
  roles: { gateway: true, worker: false },
  env: { RUN_STALE_MS: String(STALE_MS), WORKER_CONCURRENCY: '4' },
  setup: (ctx) => {
    ctx.workers = [];
  },
  teardown: async (ctx) => {
    for (const worker of ctx.workers) worker.kill('SIGKILL');
    await Promise.all(ctx.workers.map((worker) => worker.exited().catch(() => null)));
  },
});

async function startWorkers(ctx: Ctx, count: number, env: Record<string, string> = {}): Promise<Child[]> {
  const started = Array.from({ length: count }, () => run(process.execPath, ['--import', 'tsx', 'app/main.ts', 'worker'], cleanEnv({ ...ctx.stack.env, LOG_LEVEL: 'info', ...env })));
  ctx.workers.push(...started);
  await Promise.all(started.map((worker) => worker.waitFor(/"msg":"started"/, 30_000)));
  return started;
}

/** Model requests whose newest user message carries `marker`. */
function requestsFor(ctx: Ctx, marker: string): number {
  return ctx.stack.sim.requests.filter((r) => {
    const users = (r.body.messages as Array<{ role: string; content: unknown }>).filter((m) => m.role === 'user');
    return String(users.at(-1)?.content ?? '').includes(marker);
  }).length;
}

async function send(client: TestClient, marker: string) {
  const ack = await client.request('message.send', { content: `${marker}: tell me a long story ${LONG}` });
  return { threadId: ack.payload.thread_id as string, runId: ack.payload.run_id as string, marker };
}

function runRow(ctx: Ctx, runId: string) {
  return ctx.stack.db.selectFrom('runs').select(['status', 'attempt', 'heartbeat_at', 'started_at']).where('id', '=', runId).executeTakeFirstOrThrow();
}

test('three turns of 3× the stale threshold on two workers: one attempt and one model request each, all completed', async (ctx) => {
  const workers = await startWorkers(ctx, 2);
  const client = await connect(ctx, 'patient');
  const turns = await Promise.all(['alpha', 'bravo', 'charlie'].map((marker) => send(client, marker)));

  // While they stream, the heartbeat moves: every running run's heartbeat_at is recent.
  await waitFor(async () => (await runRow(ctx, turns[0]!.runId)).status === 'running', 10_000, 'the first turn to start');
  // A threshold to pass: the runs outlive the stale threshold, which only a fresh heartbeat keeps from a takeover.
  await sleep(STALE_MS * 1.5);
  const beats: number[] = [];
  for (const turn of turns) {
    const row = await runRow(ctx, turn.runId);
    if (row.status !== 'running') continue;
    assert.ok(row.heartbeat_at, `run ${turn.marker} has a heartbeat`);
    beats.push(Date.now() - row.heartbeat_at!.getTime());
  }
  assert.ok(beats.length > 0, 'some turns are still running past the stale threshold');
  for (const age of beats) assert.ok(age < STALE_MS / 2, `the heartbeat is recent (${age} ms old)`);

  for (const turn of turns) {
    const done = await client.completed(turn.runId, 45_000);
    assert.is(done.payload.status, 'completed', `${turn.marker} completed`);
    const events = client.events(turn.threadId);
    assert.not.ok(events.some((e) => e.type === 'agent_thinking' && e.payload.restarted), `${turn.marker} was never taken over`);
    assert.is((await runRow(ctx, turn.runId)).attempt, 1, `${turn.marker} ran on its first attempt`);
    assert.is(requestsFor(ctx, turn.marker), 1, `${turn.marker} made one model request`);
  }
  const logs = workers.map((worker) => worker.stdout()).join('');
  assert.not.match(logs, /heartbeat (has )?failed/, 'no heartbeat failed');
  assert.not.match(logs, /run heartbeat is stale/, 'no run looked stale');
  console.log(`[long-turns] 3 turns of ~6 s on 2 workers, stale threshold ${STALE_MS} ms: heartbeat ages ${beats.join(', ')} ms; ${ctx.stack.sim.requests.length} model requests`);
});

test('a worker killed mid-turn loses its run to the other worker; the survivor keeps its own', async (ctx) => {
  for (const worker of ctx.workers.splice(0)) worker.kill('SIGKILL');
  // One turn at a time on the doomed worker, so the second turn can only go to the survivor.
  const [doomed] = await startWorkers(ctx, 1, { WORKER_CONCURRENCY: '1' });
  const client = await connect(ctx, 'bereaved');
  const lost = await send(client, 'delta');
  await client.until(() => client.events(lost.threadId).some((e) => e.type === 'message_delta'), 15_000, 'the doomed worker streaming');
  const [survivor] = await startWorkers(ctx, 1);
  const kept = await send(client, 'echo');
  await client.until(() => client.events(kept.threadId).some((e) => e.type === 'message_delta'), 15_000, 'the survivor streaming');
  doomed!.kill('SIGKILL');
  await doomed!.exited();

  const taken = await client.completed(lost.runId, 45_000);
  assert.is(taken.payload.status, 'completed');
  assert.is((await runRow(ctx, lost.runId)).attempt, 2, 'the dead worker\'s run was taken over once');
  const own = await client.completed(kept.runId, 45_000);
  assert.is(own.payload.status, 'completed');
  assert.is((await runRow(ctx, kept.runId)).attempt, 1, 'the survivor\'s own run was left alone');
  assert.is(requestsFor(ctx, 'echo'), 1);
  assert.not.match(survivor!.stdout(), /heartbeat (has )?failed/);
});

test.run();
