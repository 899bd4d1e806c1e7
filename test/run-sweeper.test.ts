/**
 * The heartbeat sweeper: a run marked running whose worker and job are both gone (the worker died
 * while Redis lost its queue, say) is taken over once its heartbeat is older than RUN_STALE_MS, and
 * finishes; one that has been taken over too often ends failed (worker_lost) with the text streamed
 * so far, and the thread's next turn runs. The dead attempt is played by the real repository and
 * emitter code a worker uses: claim the run, stream a little, vanish.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { sql } from 'kysely';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { assertClientMatchesLog, assertRunRebuilds } from './support/run-checks.js';
import { claimRun } from '../db/runs.repository.js';
import { RunEmitter } from '../workers/run-emitter.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { createBroker } from '../broker/index.js';
import { REDIS_URL, testRedis } from './support/database.js';
import { MAX_RUN_ATTEMPTS } from '../workers/worker.js';

const test = suite<StackCtx>('run sweeper');

// A gateway only: the worker starts once the dead attempt has been staged.
useStack(test, { roles: { gateway: true, worker: false }, env: { RUN_STALE_MS: '2000' } });

/** Sends a message and plays a worker that claims the run, streams `text`, and dies. */
async function abandonedRun(ctx: StackCtx, sub: string, text: string, attempts = 1) {
  const client = await connect(ctx, sub);
  const ack = await client.request('message.send', { content: 'Hello there [[words:20]]' });
  const { thread_id, run_id } = ack.payload;
  await client.next((f) => f.type === 'message_created' && f.payload.run_id === run_id);
  const claim = await claimRun(ctx.stack.db, run_id);
  assert.is(claim.kind, 'claimed');
  if (claim.kind !== 'claimed') throw new Error('unreachable');
  let fence = claim.fence;
  if (attempts > 1) {
    await sql`update runs set attempt = ${attempts} where id = ${run_id}`.execute(ctx.stack.db);
    fence = { runId: run_id, attempt: attempts };
  }
  const broker = createBroker({ kind: 'redis', redis: testRedis(ctx.stack.prefix) });
  const events = new GroupCommitEventLog(ctx.stack.db, broker, pino({ level: 'silent' }));
  try {
    const emitter = new RunEmitter(ctx.stack.db, thread_id, fence, pino({ level: 'silent' }), { afterSeq: claim.thread.last_seq, events });
    await emitter.emit('agent_started', { agent_id: claim.agent.id, agent_name: claim.agent.name });
    await emitter.emit('message_delta', { message_id: claim.run.assistant_message_id!, delta: text });
  } finally {
    await events.close();
    await broker.close();
  }
  await client.until(() => client.events(thread_id).some((e) => e.type === 'message_delta'), 5_000, 'the dead attempt\'s delta');
  return { client, thread_id, run_id };
}

test('a running run with a stale heartbeat and no job is taken over and finishes', async (ctx) => {
  const { client, thread_id, run_id } = await abandonedRun(ctx, 'orphan', 'Half an ans');
  const worker = await ctx.stack.start({ gateway: false, worker: true });
  try {
    const done = await client.completed(run_id, 30_000);
    assert.is(done.payload.status, 'completed');
    const events = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
    const { restarts } = assertRunRebuilds(events, run_id);
    assert.is(restarts.length, 1, 'the takeover is announced once');
    assert.is(restarts[0]!.payload.attempt, 2);
    assert.not.ok(done.payload.message.content.startsWith('Half an ans'), 'the new attempt starts its text afresh');
  } finally {
    await worker.close();
  }
});

test(`a run already tried ${MAX_RUN_ATTEMPTS} times ends failed (worker_lost) with its text, and the next turn runs`, async (ctx) => {
  const { client, thread_id, run_id } = await abandonedRun(ctx, 'poison', 'What was said so far', MAX_RUN_ATTEMPTS);
  // A second message waits behind the stuck run.
  const next = await client.request('message.send', { thread_id, content: 'Are you there? [[words:5]]' });
  const worker = await ctx.stack.start({ gateway: false, worker: true });
  try {
    const done = await client.completed(run_id, 30_000);
    assert.is(done.payload.status, 'failed');
    assert.is(done.payload.error.code, 'worker_lost');
    assert.is(done.payload.message.content, 'What was said so far', 'the streamed text is kept');
    assert.is((await client.completed(next.payload.run_id, 30_000)).payload.status, 'completed');
    const events = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
    assertRunRebuilds(events, run_id);
    assertRunRebuilds(events, next.payload.run_id);
    const run = await ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run_id).executeTakeFirstOrThrow();
    assert.equal(run, { status: 'failed', attempt: MAX_RUN_ATTEMPTS });
  } finally {
    await worker.close();
  }
});

test.run();
