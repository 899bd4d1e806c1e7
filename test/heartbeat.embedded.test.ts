/**
 * The worker's background statements on the embedded store (PGlite): a turn longer than the stale
 * threshold keeps a fresh heartbeat and is never taken over, and the heartbeat and sweep timers
 * succeed there (their runs are counted by result in background_tasks_total); a run left running
 * by an attempt nobody drives is taken over by the sweep, or ended worker_lost after its last try.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { sleep, waitFor } from './support/wait.js';
import { registry } from '../metrics/registry.js';
import { claimRun } from '../db/runs.repository.js';
import { recordTurn } from '../db/turns.repository.js';
import { MAX_RUN_ATTEMPTS } from '../workers/worker.js';

const STALE_MS = 2_000;
const test = suite<StackCtx>('heartbeat and sweep on the embedded store');

useStack(test, { backend: 'embedded', env: { RUN_STALE_MS: String(STALE_MS), LOG_LEVEL: 'info' } });

/** background_tasks_total for one task and result, in this process. */
async function taskRuns(task: string, result: 'ok' | 'failed'): Promise<number> {
  const metric = await registry.getSingleMetric('convo_background_tasks_total')!.get();
  return metric.values.filter((v) => v.labels.task === task && v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
}

test('a turn of 3× the stale threshold: fresh heartbeats, no takeover, no failed background task', async (ctx) => {
  const before = { beats: await taskRuns('heartbeat', 'ok'), sweeps: await taskRuns('sweep', 'ok'), failed: (await taskRuns('heartbeat', 'failed')) + (await taskRuns('sweep', 'failed')) };
  const client = await connect(ctx, 'steady');
  const ack = await client.request('message.send', { content: 'A long story please [[words:60]] [[delay:100]]' });
  const { run_id, thread_id } = ack.payload;
  const row = () => ctx.stack.db.selectFrom('runs').select(['status', 'attempt', 'heartbeat_at']).where('id', '=', run_id).executeTakeFirstOrThrow();
  await waitFor(async () => (await row()).status === 'running', 10_000, 'the turn to start');
  // A threshold to pass: the run outlives the stale threshold, which only a fresh heartbeat keeps from a takeover.
  await sleep(STALE_MS * 1.5);
  const during = await row();
  assert.is(during.status, 'running', 'still streaming past the threshold');
  assert.ok(during.heartbeat_at && Date.now() - during.heartbeat_at.getTime() < STALE_MS / 2, 'the heartbeat is recent');

  const done = await client.completed(run_id, 30_000);
  assert.is(done.payload.status, 'completed');
  assert.is((await row()).attempt, 1);
  assert.not.ok(client.events(thread_id).some((e) => e.type === 'agent_thinking' && e.payload.restarted));
  assert.ok((await taskRuns('heartbeat', 'ok')) > before.beats, 'heartbeats succeeded');
  assert.ok((await taskRuns('sweep', 'ok')) > before.sweeps, 'a sweep ran and succeeded');
  assert.is((await taskRuns('heartbeat', 'failed')) + (await taskRuns('sweep', 'failed')), before.failed, 'no background task failed');
  assert.not.ok(ctx.stack.logs.some((line) => /heartbeat|sweep/.test(String(line.msg)) && line.level >= 40), 'nothing about the heartbeat or the sweep was logged at warn or above');
});

/** A run claimed by an attempt that then vanished: running, with no job and no heartbeat. */
async function abandoned(ctx: StackCtx, user: string, attempt = 1) {
  const turn = await recordTurn(ctx.stack.db, { workspaceId: 'acme', userId: user }, { content: 'Hello there [[words:5]]' });
  const claim = await claimRun(ctx.stack.db, turn.runId);
  assert.is(claim.kind, 'claimed');
  if (attempt > 1) await ctx.stack.db.updateTable('runs').set({ attempt }).where('id', '=', turn.runId).execute();
  return turn.runId;
}

test('the sweep takes over a stale run, and ends one tried too often as worker_lost', async (ctx) => {
  const [orphan, poisoned] = [await abandoned(ctx, 'orphan'), await abandoned(ctx, 'poisoned', MAX_RUN_ATTEMPTS)];
  const status = async (runId: string) => ctx.stack.db.selectFrom('runs').select(['status', 'attempt', 'error']).where('id', '=', runId).executeTakeFirstOrThrow();
  await waitFor(async () => (await status(orphan)).status === 'completed', 30_000, 'the orphan to be taken over and finish');
  assert.is((await status(orphan)).attempt, 2, 'taken over once');
  await waitFor(async () => (await status(poisoned)).status === 'failed', 30_000, 'the poisoned run to end');
  const ended = await status(poisoned);
  assert.is(ended.attempt, MAX_RUN_ATTEMPTS);
  assert.match(JSON.stringify(ended.error), /worker_lost/);
});

test.run();
