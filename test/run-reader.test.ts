/**
 * The stream helpers for one turn (server/streams/): followRun delivers only the run's events and
 * ends after its agent_completed; activeTurn finds the thread's running run, else its oldest queued
 * one, with the seq its events start after, and nothing once every run has ended.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor, within } from './support/wait.js';
import { followRun } from '../server/streams/run-reader.js';
import { activeTurn } from '../server/streams/active-turn.js';
import { BatchedReads } from '../server/batched-reads.js';
import { recordTurn } from '../db/turns.repository.js';
import { cancelQueuedRun } from '../db/runs.repository.js';
import type { ThreadEvent } from '../protocol/frames.js';

const test = suite<StackCtx>('run reader');
// No worker: runs stay queued, and only the test writes their events.
useStack(test, { roles: { gateway: true, worker: false } });

const owner = { workspaceId: 'acme', userId: 'runner' };
const delta = (threadId: string, runId: string, text: string) => ({
  threadId,
  draft: { type: 'message_delta' as const, run_id: runId, payload: { message_id: `m_${runId}`, delta: text } },
});

test('only the run\'s events, from its start, live ones too, until its agent_completed', async (ctx) => {
  const first = await recordTurn(ctx.node.db, owner, { content: 'first' });
  const second = await recordTurn(ctx.node.db, owner, { content: 'second', threadId: first.threadId, onBusy: 'enqueue' });
  const threadId = first.threadId;
  await ctx.node.events.append([delta(threadId, first.runId, 'a1'), delta(threadId, second.runId, 'b1')]);
  const seen: ThreadEvent[] = [];
  const abort = new AbortController();
  const ended = followRun(
    { broker: ctx.node.broker, reads: new BatchedReads(ctx.node.db), log: pino({ level: 'silent' }) },
    { threadId, runId: second.runId, afterSeq: second.fromSeq - 1 },
    (event) => void seen.push(event),
    abort.signal,
  );
  await waitFor(() => seen.length === 2, 5_000, 'the stored events of the run');
  await ctx.node.events.append([delta(threadId, first.runId, 'a2'), delta(threadId, second.runId, 'b2')]);
  const cancelled = await cancelQueuedRun(ctx.node.db, second.runId);
  await ctx.node.events.publish(threadId, [cancelled!]);
  await ctx.node.events.append([delta(threadId, second.runId, 'after the end')]);
  assert.is(await within(ended, 5_000, 'the run to end'), 'ended');
  assert.equal(seen.map((e) => e.type), ['message_created', 'message_delta', 'message_delta', 'agent_completed']);
  assert.ok(seen.every((e) => e.payload.run_id === second.runId));
  assert.equal(seen.flatMap((e) => (e.type === 'message_delta' ? [e.payload.delta] : [])), ['b1', 'b2']);
});

test('the active turn: the oldest queued run with the seq before its message, then none once all ended', async (ctx) => {
  const first = await recordTurn(ctx.node.db, owner, { content: 'one' });
  const second = await recordTurn(ctx.node.db, owner, { content: 'two', threadId: first.threadId, onBusy: 'enqueue' });
  assert.equal(await activeTurn(ctx.node.db, first.threadId), { runId: first.runId, afterSeq: first.fromSeq - 1 });
  await cancelQueuedRun(ctx.node.db, first.runId);
  assert.equal(await activeTurn(ctx.node.db, first.threadId), { runId: second.runId, afterSeq: second.fromSeq - 1 });
  await cancelQueuedRun(ctx.node.db, second.runId);
  assert.is(await activeTurn(ctx.node.db, first.threadId), undefined);
});

test.run();
