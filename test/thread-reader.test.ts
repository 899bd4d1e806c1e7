/**
 * The thread reader for streams that are not native sockets (server/streams/thread-reader.ts), on
 * Postgres and Redis: stored events then live ones, in seq order and once each; a gap left by a lost
 * publish filled from the log; a stop from the sink, an abort, and a deleted thread.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor, within } from './support/wait.js';
import { readThread, type ReadEnd } from '../server/streams/thread-reader.js';
import { BatchedReads } from '../server/batched-reads.js';
import { recordTurn } from '../db/turns.repository.js';
import { appendBatch } from '../db/events.repository.js';
import { deleteOwnedThread } from '../db/threads.repository.js';
import type { ThreadEvent } from '../protocol/frames.js';
import { encodeThreadDeleted, threadChannel } from '../broker/index.js';

const test = suite<StackCtx>('thread reader');
// No worker: the runs these tests record stay queued, and only the test writes events.
useStack(test, { roles: { gateway: true, worker: false } });

const owner = { workspaceId: 'acme', userId: 'reader' };
const note = (threadId: string, text: string) => ({ threadId, draft: { type: 'message_delta' as const, run_id: 'run_x', payload: { message_id: 'm_x', delta: text } } });

function reader(ctx: StackCtx, threadId: string, afterSeq: number, stopAt?: (e: ThreadEvent) => boolean) {
  const seen: ThreadEvent[] = [];
  const abort = new AbortController();
  const ended: Promise<ReadEnd> = readThread(
    { broker: ctx.node.broker, reads: new BatchedReads(ctx.node.db), log: pino({ level: 'silent' }) },
    threadId,
    afterSeq,
    (event) => {
      seen.push(event);
      return stopAt ? !stopAt(event) : undefined;
    },
    abort.signal,
  );
  return { seen, abort, ended, seqs: () => seen.map((e) => e.payload.seq) };
}

test('stored events after the seq, then live ones, in order and once each; the sink stops it', async (ctx) => {
  const turn = await recordTurn(ctx.node.db, owner, { content: 'hello' });
  await ctx.node.events.append([note(turn.threadId, 'one'), note(turn.threadId, 'two')]);
  const r = reader(ctx, turn.threadId, 1, (e) => e.type === 'message_delta' && e.payload.delta === 'stop');
  await waitFor(() => r.seen.length === 2, 5_000, 'the stored events');
  assert.equal(r.seqs(), [2, 3]);
  for (const text of ['three', 'four', 'stop', 'after']) await ctx.node.events.append([note(turn.threadId, text)]);
  assert.is(await within(r.ended, 5_000, 'the reader to stop'), 'done');
  assert.equal(r.seqs(), [2, 3, 4, 5, 6], 'nothing after the stop');
  assert.equal(r.seen.map((e) => e.type === 'message_delta' && e.payload.delta), ['one', 'two', 'three', 'four', 'stop']);
});

test('a live event after a lost publish: the gap is read from the log before it', async (ctx) => {
  const turn = await recordTurn(ctx.node.db, owner, { content: 'gaps' });
  const r = reader(ctx, turn.threadId, 1);
  await ctx.node.events.append([note(turn.threadId, 'live')]);
  await waitFor(() => r.seen.length === 1, 5_000, 'the first live event');
  // Stored without a publish (as when the broker was down), then one that is published.
  await appendBatch(ctx.node.db, [note(turn.threadId, 'unpublished a'), note(turn.threadId, 'unpublished b')]);
  await ctx.node.events.append([note(turn.threadId, 'published')]);
  await waitFor(() => r.seen.length === 4, 5_000, 'the gap and the live event');
  assert.equal(r.seqs(), [2, 3, 4, 5]);
  assert.equal(r.seen.map((e) => e.type === 'message_delta' && e.payload.delta), ['live', 'unpublished a', 'unpublished b', 'published']);
  r.abort.abort();
  assert.is(await within(r.ended, 5_000, 'the aborted reader'), 'aborted');
});

test('a deleted thread ends the reader', async (ctx) => {
  const turn = await recordTurn(ctx.node.db, owner, { content: 'doomed' });
  const r = reader(ctx, turn.threadId, 0);
  await waitFor(() => r.seen.length === 1, 5_000, 'the stored event');
  await deleteOwnedThread(ctx.node.db, owner, turn.threadId);
  await ctx.node.broker.publish(threadChannel(turn.threadId), encodeThreadDeleted(turn.threadId, new Date().toISOString()));
  assert.is(await within(r.ended, 5_000, 'the reader to end'), 'deleted');
  assert.is((await within(reader(ctx, turn.threadId, 0).ended, 5_000, 'a reader of a deleted thread')), 'deleted');
});

test.run();
