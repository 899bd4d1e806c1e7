import net from 'node:net';
import pg from 'pg';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore, type Store } from '../db/connect.js';
import { appendBatch, runEventsAfter, FencedError, ThreadGoneError, type AppendItem, type WriteFence } from '../db/events.repository.js';
import { listEventsAfter } from '../db/event-reads.repository.js';
import { cancelQueuedRun, claimRun } from '../db/runs.repository.js';
import { recordTurn } from '../db/turns.repository.js';
import { StatementCounter } from '../db/statement-counter.js';
import { decodeBrokerEvents, threadChannel } from '../broker/index.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { RunEmitter } from '../workers/run-emitter.js';
import { isConnectionError } from '../errors/backing-services.js';
import { connect, redisOnlyTest, useStack, type StackCtx } from './support/fixture.js';
import { startHandRun, type HandRun } from './support/hand-run.js';
import type { Backend } from './support/stack.js';
import { sleep, waitFor, within } from './support/wait.js';

/**
 * The group-committed event log (events/group-commit-log.ts over append_events), against every
 * backend (event-log.redis.test.ts, event-log.embedded.test.ts): many runs on many threads
 * appending at once, refused items inside a batch (a stale attempt, a deleted thread, a value the
 * store cannot hold), a run's last write, readers replaying while batches land, and on Postgres a
 * batch cut off midway: its connection terminated before the commit, and its answer lost after it.
 * Each check is against the stored log and against what the broker carried.
 */
export function eventLogSuite(backend: Backend): void {
const test = suite<StackCtx>(`event log (${backend})`);
// The node's worker must not touch the runs these tests drive by hand.
useStack(test, { backend, env: { RUN_STALE_MS: '600000' } });
const postgresOnly = redisOnlyTest(test, backend);
const silent = pino({ level: 'silent' });


function delta(run: HandRun, text: string, fence: WriteFence = run.fence): AppendItem {
  return { threadId: run.threadId, fence, draft: { type: 'message_delta', run_id: run.runId, payload: { message_id: run.messageId, delta: text } } };
}

async function storedEvents(ctx: StackCtx, threadId: string) {
  return ctx.node.db.selectFrom('events').select(['seq', 'type', 'payload']).where('thread_id', '=', threadId).orderBy('seq').execute();
}

async function lastSeq(ctx: StackCtx, threadId: string): Promise<number> {
  const row = await ctx.node.db.selectFrom('threads').select('last_seq').where('id', '=', threadId).executeTakeFirstOrThrow();
  return row.last_seq;
}

function assertGapless(seqs: number[], from: number, what: string): void {
  assert.equal(seqs, seqs.map((_, i) => i + from), `${what}: seq ${from}.. once each, in order`);
}

/** The seqs the broker carries on each thread's channel, in arrival order. */
async function listen(ctx: StackCtx, threadIds: string[]) {
  const seen = new Map(threadIds.map((id) => [id, [] as number[]]));
  const stops = await Promise.all(threadIds.map((id) =>
    ctx.node.broker.subscribe(threadChannel(id), (message) => seen.get(id)!.push(...decodeBrokerEvents(message)!.map((event) => event.seq)))));
  return { seen, stop: () => Promise.all(stops.map((stop) => stop())) };
}

test('many runs on many threads appending at once: every thread gap-free in append order, nothing doubled, published in seq order', async (ctx) => {
  const log = ctx.node.events;
  const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => startHandRun(ctx, `crowd-${i % 4}`)));
  const broker = await listen(ctx, runs.map((r) => r.threadId));
  const before = { ...log.stats };
  const APPENDS = 25;
  // Per thread two writers at once: the run (fenced; every fifth append two events as one unit)
  // and an unfenced one (notes, as a gateway would append).
  const written = await Promise.all(runs.map(async (run) => {
    const byRun = (async () => {
      const stored: Array<{ seq: number; frame: string; text: string }> = [];
      for (let i = 0; i < APPENDS; i++) {
        const texts = i % 5 === 4 ? [`${run.runId}:${i}a`, `${run.runId}:${i}b`] : [`${run.runId}:${i}`];
        const events = await log.append(texts.map((text) => delta(run, text)));
        events.forEach((event, j) => stored.push({ ...event, text: texts[j]! }));
      }
      return stored;
    })();
    const byNotes = (async () => {
      const stored: Array<{ seq: number; frame: string; text: string }> = [];
      for (let i = 0; i < 8; i++) {
        const text = `${run.threadId}:note-${i}`;
        const [event] = await log.append([{ threadId: run.threadId, draft: { type: 'message_created', payload: { message: { id: `m_${text}`, role: 'system', content: text } } } }]);
        stored.push({ ...event!, text });
      }
      return stored;
    })();
    return { run, byRun: await byRun, byNotes: await byNotes };
  }));

  let units = 0;
  let items = 0;
  for (const { run, byRun, byNotes } of written) {
    units += APPENDS + 8;
    items += byRun.length + byNotes.length;
    for (const writer of [byRun, byNotes]) {
      const seqs = writer.map((e) => e.seq);
      assert.equal(seqs, [...seqs].sort((a, b) => a - b), 'each writer\'s events are numbered in the order it appended them');
    }
    const stored = await storedEvents(ctx, run.threadId);
    const total = 1 + byRun.length + byNotes.length;
    assertGapless(stored.map((e) => e.seq), 1, `thread ${run.threadId}`);
    assert.is(stored.length, total, 'every append stored once (and the turn\'s message_created)');
    assert.is(await lastSeq(ctx, run.threadId), total, 'last_seq is the newest seq');
    const text = (e: (typeof stored)[number]) => (e.type === 'message_delta' ? e.payload.delta : (e.payload as any).message.content);
    assert.equal(
      stored.slice(1).map(text).sort(),
      [...byRun, ...byNotes].map((e) => e.text).sort(),
      'the stored events are exactly the appended ones, none doubled',
    );
    // What each writer was handed back is byte for byte what the log holds, at that seq.
    for (const event of [...byRun, ...byNotes]) {
      const row = stored[event.seq - 1]!;
      assert.is(event.frame, JSON.stringify({ type: row.type, payload: row.payload }));
    }
    const times = stored.map((e) => Date.parse(e.payload.timestamp as string));
    assert.equal(times, [...times].sort((a, b) => a - b), 'timestamps follow seq: the order is Postgres\'s own');
  }
  await waitFor(() => written.every(({ run, byRun, byNotes }) => broker.seen.get(run.threadId)!.length >= byRun.length + byNotes.length), 10_000, 'every publish');
  for (const { run, byRun, byNotes } of written) {
    assertGapless(broker.seen.get(run.threadId)!, 2, `published on ${run.threadId}`);
    assert.is(broker.seen.get(run.threadId)!.length, byRun.length + byNotes.length, 'each event published once');
  }
  await broker.stop();
  const batches = log.stats.batches - before.batches;
  assert.ok(batches < units, `appends were grouped: ${units} appends in ${batches} batches`);
  assert.ok(log.stats.maxBatch > 1, `largest batch ${log.stats.maxBatch}`);
  assert.is(log.stats.events - before.events, items);
});

test('one writer alone: each append is its own batch, written at once', async (ctx) => {
  const log = ctx.node.events;
  const run = await startHandRun(ctx, 'alone');
  const before = log.stats.batches;
  for (let i = 0; i < 5; i++) {
    const [event] = await log.append([delta(run, `alone ${i}`)]);
    assert.is(event!.seq, run.afterSeq + 1 + i);
    assert.is(log.stats.batches, before + i + 1, 'a batch of one, not held back for company');
  }
});

test('a stale attempt inside a batch: only its items are refused (FencedError), they take no seq, the rest is stored', async (ctx) => {
  const log = ctx.node.events;
  const run = await startHandRun(ctx, 'fenced');
  const takeover = await claimRun(ctx.node.db, run.runId, { takeover: true });
  assert.is(takeover.kind, 'claimed');
  if (takeover.kind !== 'claimed') return;
  const current: HandRun = { ...run, fence: takeover.fence, messageId: takeover.run.assistant_message_id! };
  const other = await startHandRun(ctx, 'fenced-neighbour');
  const staleAnswer = 'm_stale_answer';
  const before = log.stats.batches;
  // Appended in one tick: one batch.
  const results = await Promise.allSettled([
    log.append([delta(run, 'stale 1')]),
    log.append([delta(current, 'current')]),
    log.append([delta(other, 'neighbour')]),
    log.append([
      delta(run, 'stale 2'),
      {
        threadId: run.threadId, fence: run.fence,
        draft: { type: 'agent_completed', run_id: run.runId, payload: { status: 'completed', message: { id: staleAnswer, role: 'assistant', content: 'stale' } } },
        message: { id: staleAnswer, role: 'assistant', content: 'stale' },
        finish: { status: 'completed' },
      },
    ]),
  ]);
  assert.is(log.stats.batches, before + 1, 'one batch');
  assert.equal(results.map((r) => r.status), ['rejected', 'fulfilled', 'fulfilled', 'rejected']);
  for (const r of [results[0], results[3]]) assert.instance((r as PromiseRejectedResult).reason, FencedError);

  const stored = await storedEvents(ctx, run.threadId);
  assertGapless(stored.map((e) => e.seq), 1, 'the taken-over thread');
  assert.equal(stored.map((e) => e.type), ['message_created', 'message_delta']);
  assert.is(stored[1]!.payload.delta, 'current');
  assert.is(await lastSeq(ctx, run.threadId), 2, 'refused items took no seq');
  const runRow = await ctx.node.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run.runId).executeTakeFirstOrThrow();
  assert.equal(runRow, { status: 'running', attempt: 2 }, 'the stale completion did not finish the run');
  assert.is(await ctx.node.db.selectFrom('messages').select('id').where('id', '=', staleAnswer).executeTakeFirst(), undefined, 'nor store its message');
  assert.equal((await storedEvents(ctx, other.threadId)).map((e) => e.seq), [1, 2]);
});

test('a deleted thread inside a batch: its items get ThreadGoneError, the others are stored', async (ctx) => {
  const log = ctx.node.events;
  const doomed = await startHandRun(ctx, 'doomed');
  const survivor = await startHandRun(ctx, 'survivor');
  await ctx.node.db.deleteFrom('threads').where('id', '=', doomed.threadId).execute();
  const before = log.stats.batches;
  const [gone, kept] = await Promise.allSettled([log.append([delta(doomed, 'into the void')]), log.append([delta(survivor, 'still here')])]);
  assert.is(log.stats.batches, before + 1, 'one batch');
  assert.is(gone.status, 'rejected');
  assert.instance((gone as PromiseRejectedResult).reason, ThreadGoneError);
  assert.is((gone as PromiseRejectedResult).reason.threadId, doomed.threadId);
  assert.is(kept.status, 'fulfilled');
  assert.equal((await storedEvents(ctx, survivor.threadId)).map((e) => [e.seq, e.type]), [[1, 'message_created'], [2, 'message_delta']]);
  assert.is((await storedEvents(ctx, doomed.threadId)).length, 0);
});

test('a value the store refuses inside a batch fails its writer only; the others are stored in order', async (ctx) => {
  const log = ctx.node.events;
  const runs = await Promise.all([startHandRun(ctx, 'bad-0'), startHandRun(ctx, 'bad-1'), startHandRun(ctx, 'bad-2')]);
  const before = { ...log.stats };
  const results = await Promise.allSettled([
    log.append([delta(runs[0]!, 'fine')]),
    // A lone surrogate: JSON can carry it, Postgres's jsonb cannot.
    log.append([delta(runs[1]!, 'broken \ud800 text')]),
    log.append([delta(runs[2]!, 'fine too'), delta(runs[2]!, 'and this')]),
  ]);
  assert.equal(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  const reason = (results[1] as PromiseRejectedResult).reason;
  assert.not.ok(isConnectionError(reason) || reason instanceof FencedError, `the store's own refusal: ${reason}`);
  assert.ok(log.stats.failedBatches > before.failedBatches);
  assert.equal((await storedEvents(ctx, runs[0]!.threadId)).map((e) => e.seq), [1, 2]);
  assert.equal((await storedEvents(ctx, runs[1]!.threadId)).map((e) => e.seq), [1], 'nothing of the refused writer');
  assert.is(await lastSeq(ctx, runs[1]!.threadId), 1);
  assert.equal((await storedEvents(ctx, runs[2]!.threadId)).map((e) => e.payload.delta ?? e.type), ['message_created', 'fine too', 'and this']);
  // The log goes on.
  const [next] = await log.append([delta(runs[1]!, 'mended')]);
  assert.is(next!.seq, 2);
});

test('a run\'s last write is one batch: the pending delta, the answer, agent_completed and the finished run, with the next queued run', async (ctx) => {
  const log = ctx.node.events;
  const run = await startHandRun(ctx, 'finisher');
  const queued = await recordTurn(ctx.node.db, { workspaceId: 'acme', userId: 'finisher' }, { content: 'And then?', threadId: run.threadId });
  const updatedAt = async () => (await ctx.node.db.selectFrom('threads').select('updated_at').where('id', '=', run.threadId).executeTakeFirstOrThrow()).updated_at.getTime();
  const emitter = new RunEmitter(ctx.node.db, run.threadId, run.fence, silent, { afterSeq: await lastSeq(ctx, run.threadId), events: log });
  const activeAt = await updatedAt();
  await emitter.emit('message_delta', { message_id: run.messageId, delta: 'Part one, ' });
  assert.is(await updatedAt(), activeAt, 'an event without a message does not rewrite updated_at');

  const before = log.stats.batches;
  const answer = 'Part one, part two.';
  const next = await emitter.complete(
    { status: 'completed', message: { id: run.messageId, role: 'assistant', content: answer, run_id: run.runId } },
    { status: 'completed', usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
    { message: { id: run.messageId, role: 'assistant', content: answer }, before: [{ type: 'message_delta', payload: { message_id: run.messageId, delta: 'part two.' } }] },
  );
  assert.is(log.stats.batches, before + 1, 'one write');
  assert.is(next, queued.runId, 'the thread\'s next queued run');
  const stored = await storedEvents(ctx, run.threadId);
  assertGapless(stored.map((e) => e.seq), 1, 'the thread');
  assert.equal(stored.slice(-3).map((e) => e.type), ['message_delta', 'message_delta', 'agent_completed']);
  assert.is(stored.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join(''), answer);
  const runRow = await ctx.node.db.selectFrom('runs').select(['status', 'usage', 'finished_at']).where('id', '=', run.runId).executeTakeFirstOrThrow();
  assert.equal([runRow.status, runRow.usage], ['completed', { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }]);
  assert.ok(runRow.finished_at);
  const message = await ctx.node.db.selectFrom('messages').select(['role', 'content', 'run_id']).where('id', '=', run.messageId).executeTakeFirstOrThrow();
  assert.equal(message, { role: 'assistant', content: answer, run_id: run.runId });
  assert.ok((await updatedAt()) > activeAt, 'the answer moves the thread up the list');
  // Finished: the same attempt can write nothing more.
  const late = await emitter.emit('message_delta', { message_id: run.messageId, delta: 'late' }).then(() => undefined, (e: unknown) => e);
  assert.instance(late, FencedError);
  await cancelQueuedRun(ctx.node.db, queued.runId);
});

test('readers replaying while batches land see every thread gap-free, nothing doubled', async (ctx) => {
  const log = ctx.node.events;
  const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => startHandRun(ctx, `replayer-${i}`)));
  const APPENDS = 40;
  let stop = false;
  const progress = new Map(runs.map((r) => [r.threadId, 0]));
  const writers = Promise.all(runs.map(async (run) => {
    for (let i = 0; i < APPENDS; i++) {
      await log.append(i % 3 === 2 ? [delta(run, `${i}a `), delta(run, `${i}b `)] : [delta(run, `${i} `)]);
      progress.set(run.threadId, i + 1);
    }
  }));
  // Log readers: every read is a gapless run of seqs from where the last one ended (a batch is
  // visible all at once, and a thread's batches commit in seq order).
  const pollers = Promise.all(runs.map(async (run) => {
    let after = 0;
    let reads = 0;
    while (!stop) {
      const page = await listEventsAfter(ctx.node.db, run.threadId, after, 50);
      assertGapless(page.map((e) => e.seq), after + 1, `a read of ${run.threadId} after ${after}`);
      if (page.length > 0) after = page.at(-1)!.seq;
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return reads;
  }));
  // Sockets following the threads: one from the start, the others joining at different points of
  // the stream, from 0 and from where a reader of the log got to.
  const clients: Array<{ client: Awaited<ReturnType<typeof connect>>; threadId: string; from: number }> = [];
  for (const [i, run] of runs.entries()) {
    const early = await connect(ctx, `replayer-${i}`);
    await early.request('thread.subscribe', { thread_id: run.threadId, after_seq: 0 });
    clients.push({ client: early, threadId: run.threadId, from: 0 });
  }
  for (const step of [8, 20, 32]) {
    await waitFor(() => runs.every((r) => progress.get(r.threadId)! >= step), 20_000, `the writers past ${step}`);
    for (const [i, run] of runs.entries()) {
      const from = step === 20 ? (await listEventsAfter(ctx.node.db, run.threadId, 0, 1000)).length : 0;
      const late = await connect(ctx, `replayer-${i}`);
      await late.request('thread.subscribe', { thread_id: run.threadId, after_seq: from });
      clients.push({ client: late, threadId: run.threadId, from });
    }
  }
  await within(writers, 30_000, 'the writers');
  stop = true;
  const reads = await pollers;
  assert.ok(reads.every((n) => n > 1), `the log was read while it grew: ${reads}`);
  for (const { client, threadId, from } of clients) {
    const total = await lastSeq(ctx, threadId);
    await client.until(() => client.events(threadId).length >= total - from, 10_000, `${threadId} from ${from}`);
    const stored = await storedEvents(ctx, threadId);
    const received = client.events(threadId);
    assert.equal(
      received.map((e) => ({ seq: e.payload.seq, type: e.type, payload: e.payload })),
      stored.filter((e) => e.seq > from).map((e) => ({ seq: e.seq, type: e.type, payload: e.payload })),
      `a socket replaying ${threadId} from ${from} got the log after it, once each, in order`,
    );
  }
});

/** A store of the test's own on the suite's database (its connections are the ones cut below). */
async function ownStore(url: string, poolSize: number): Promise<Store> {
  return openStore({ kind: 'postgres', url, poolSize }, new StatementCounter());
}

/**
 * Holds a lock that every batch's insert of events waits for (the events table in SHARE mode), in
 * a connection of its own until `release()`: a batch in flight stops there, mid-write, with its
 * threads locked. (A thread's row lock would not do: a batch skips a locked thread.)
 */
async function holdWrites(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('begin');
  await client.query('lock table events in share mode');
  return {
    async release() {
      await client.query('commit');
      await client.end();
    },
  };
}

/** The backend pid of the append_events call waiting for a lock (the batch in flight). */
async function waitingBatch(ctx: StackCtx): Promise<number> {
  let pid: number | undefined;
  await waitFor(async () => {
    const { rows } = await pg_query(ctx, `select pid from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query like '%append_events(%' and pid <> pg_backend_pid()`);
    pid = rows[0]?.pid;
    return pid !== undefined;
  }, 10_000, 'the batch to wait for a lock');
  return pid!;
}

async function pg_query(ctx: StackCtx, text: string): Promise<{ rows: any[] }> {
  const client = new pg.Client({ connectionString: ctx.stack.database!.url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

postgresOnly('a batch whose connection is terminated before it commits: all of it fails as an outage, none of it is stored, no seq is used', async (ctx) => {
  const url = ctx.stack.database!.url;
  const store = await ownStore(url, 2);
  const log = new GroupCommitEventLog(store.db, ctx.node.broker, silent);
  try {
    const runs = await Promise.all(Array.from({ length: 4 }, (_, i) => startHandRun(ctx, `cut-${i}`)));
    const lock = await holdWrites(url);
    const pending = runs.map((run) => log.append([delta(run, 'lost'), delta(run, 'lost too')]));
    const settled = Promise.allSettled(pending);
    await pg_query(ctx, `select pg_terminate_backend(${await waitingBatch(ctx)})`);
    const results = await within(settled, 10_000, 'the cut batch');
    await lock.release();
    assert.ok(results.every((r) => r.status === 'rejected' && isConnectionError(r.reason)), `every writer sees an outage: ${results.map((r) => r.status === 'rejected' ? r.reason : 'stored')}`);
    assert.is(log.stats.batches, 1, 'they were one batch');
    for (const run of runs) {
      assert.equal((await storedEvents(ctx, run.threadId)).map((e) => e.type), ['message_created'], 'none of the batch was stored');
      assert.is(await lastSeq(ctx, run.threadId), 1);
    }
    // Written again (as the emitters do), the seqs go on from where they were.
    const again = await Promise.all(runs.map((run) => log.append([delta(run, 'found')])));
    assert.equal(again.map(([e]) => e!.seq), [2, 2, 2, 2]);
  } finally {
    await log.close();
    await store.close();
  }
});

postgresOnly('run emitters whose batch is terminated mid-write retry it: each event stored once, the turn goes on', async (ctx) => {
  const url = ctx.stack.database!.url;
  const store = await ownStore(url, 2);
  const log = new GroupCommitEventLog(store.db, ctx.node.broker, silent);
  try {
    const runs = await Promise.all(Array.from({ length: 4 }, (_, i) => startHandRun(ctx, `retry-${i}`)));
    const broker = await listen(ctx, runs.map((r) => r.threadId));
    const emitters = runs.map((run) => new RunEmitter(store.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log, retryWindowMs: 20_000 }));
    const lock = await holdWrites(url);
    const emitted = Promise.all(emitters.map((emitter, i) => emitter.emit('message_delta', { message_id: runs[i]!.messageId, delta: `retried ${i}` })));
    await pg_query(ctx, `select pg_terminate_backend(${await waitingBatch(ctx)})`);
    await lock.release();
    await within(emitted, 20_000, 'the emitters');
    assert.ok(log.stats.failedBatches >= 1, 'a batch failed');
    for (const [i, run] of runs.entries()) {
      const stored = await storedEvents(ctx, run.threadId);
      assert.equal(stored.map((e) => [e.seq, e.payload.delta ?? e.type]), [[1, 'message_created'], [2, `retried ${i}`]], 'stored once');
    }
    await waitFor(() => runs.every((r) => broker.seen.get(r.threadId)!.length >= 1), 5_000, 'the publishes');
    for (const run of runs) assert.equal(broker.seen.get(run.threadId), [2], 'published once');
    await broker.stop();
  } finally {
    await log.close();
    await store.close();
  }
});

postgresOnly('a batch that commits but whose answer is lost: every emitter finds its events stored, none is written twice', async (ctx) => {
  const url = new URL(ctx.stack.database!.url);
  const proxy = await replyCutter(Number(url.port || 5432));
  url.port = String(proxy.port);
  const store = await ownStore(url.toString(), 1);
  const log = new GroupCommitEventLog(store.db, ctx.node.broker, silent);
  try {
    const runs = await Promise.all(Array.from({ length: 4 }, (_, i) => startHandRun(ctx, `lost-${i}`)));
    const broker = await listen(ctx, runs.map((r) => r.threadId));
    // The pool's one connection is open before the cut is armed.
    await store.db.selectFrom('threads').select('id').limit(1).execute();
    const emitters = runs.map((run) => new RunEmitter(store.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log, retryWindowMs: 20_000 }));
    const lock = await holdWrites(ctx.stack.database!.url);
    const emitted = Promise.all(emitters.map((emitter, i) =>
      emitter.emitAll([
        { type: 'message_delta', payload: { message_id: runs[i]!.messageId, delta: `once ${i}` } },
        { type: 'message_delta', payload: { message_id: runs[i]!.messageId, delta: ` and once ${i}` } },
      ])));
    await waitingBatch(ctx);
    proxy.cutNextReply();
    await lock.release();
    await within(emitted, 20_000, 'the emitters');
    assert.is(proxy.cuts, 1, 'the answer to the batch was cut');
    assert.is(log.stats.batches, 1, 'written once: the emitters found it stored');
    assert.is(log.stats.failedBatches, 1);
    for (const [i, run] of runs.entries()) {
      const stored = await storedEvents(ctx, run.threadId);
      assert.equal(stored.map((e) => [e.seq, e.payload.delta ?? e.type]), [[1, 'message_created'], [2, `once ${i}`], [3, ` and once ${i}`]], 'stored once');
      assert.equal((await runEventsAfter(ctx.node.db, run.threadId, run.runId, run.afterSeq, 10)).length, 2, "the run has these two events after its claim");
    }
    await waitFor(() => runs.every((r) => broker.seen.get(r.threadId)!.length >= 2), 5_000, 'the publishes');
    for (const run of runs) assert.equal(broker.seen.get(run.threadId), [2, 3], 'published once, in order, by the emitter that found them');
    await broker.stop();
  } finally {
    await log.close();
    await store.close();
    await proxy.close();
  }
});

postgresOnly('a thread another transaction holds does not hold the batch: the other threads are stored at once, the held one in order when the lock goes', async (ctx) => {
  const url = ctx.stack.database!.url;
  const store = await ownStore(url, 2);
  const log = new GroupCommitEventLog(store.db, ctx.node.broker, silent);
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    const [held, ...free] = await Promise.all(Array.from({ length: 4 }, (_, i) => startHandRun(ctx, `held-${i}`)));
    const broker = await listen(ctx, [held!.threadId]);
    // Another transaction holds one thread (and, the old way, would have held the whole batch
    // until the statement timeout).
    await other.query('begin');
    await other.query('select 1 from threads where id = $1 for update', [held!.threadId]);
    const heldWrites = [log.append([delta(held!, 'first')]), log.append([delta(held!, 'second')])];
    const started = performance.now();
    const freeWrites = await within(Promise.all(free.map((run) => log.append([delta(run, 'free')]))), 2_000, 'the free threads');
    const freeMs = performance.now() - started;
    assert.equal(freeWrites.map(([e]) => e!.seq), [2, 2, 2], 'the other threads were stored at once');
    assert.ok(log.stats.detoured >= 1, `the held thread took a detour: ${JSON.stringify(log.stats)}`);
    const heldSettled = Promise.allSettled(heldWrites);
    // A window in which nothing may happen: the held writes stay unsettled for 200 ms.
    assert.is(await Promise.race([heldSettled.then(() => 'settled'), sleep(200).then(() => 'waiting')]), 'waiting', 'the held thread waits for its lock');
    await other.query('commit');
    const [first, second] = await within(Promise.all(heldWrites), 10_000, 'the held thread after the lock went');
    assert.equal([first![0]!.seq, second![0]!.seq], [2, 3], 'in append order');
    assert.equal((await storedEvents(ctx, held!.threadId)).map((e) => e.payload.delta ?? e.type), ['message_created', 'first', 'second']);
    await waitFor(() => broker.seen.get(held!.threadId)!.length >= 2, 5_000, 'the held thread\'s publishes');
    assert.equal(broker.seen.get(held!.threadId), [2, 3], 'published in seq order');
    await broker.stop();
    console.log(`[event-log] a held thread: the other threads stored in ${freeMs.toFixed(1)} ms; ${log.stats.detoured} writer(s) detoured`);
  } finally {
    await other.end();
    await log.close();
    await store.close();
  }
});

postgresOnly('appendBatch is one statement whatever the batch spans', async (ctx) => {
  const store = await ownStore(ctx.stack.database!.url, 1);
  try {
    const runs = await Promise.all(Array.from({ length: 5 }, (_, i) => startHandRun(ctx, `one-statement-${i}`)));
    const before = store.statements.statementCount();
    const outcomes = await appendBatch(store.db, runs.flatMap((run) => [delta(run, 'a'), delta(run, 'b')]));
    assert.is(store.statements.statementCount() - before, 1);
    assert.equal(outcomes.map((o) => ('event' in o ? o.event.seq : 0)), runs.flatMap(() => [2, 3]));
  } finally {
    await store.close();
  }
});

test.run();
}

/**
 * A TCP proxy to Postgres that, once armed, drops the connection on the server's next answer
 * instead of passing it on: the statement has run (and committed), the client never hears so.
 */
async function replyCutter(targetPort: number) {
  let armed = false;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (armed) {
        armed = false;
        cuts++;
        end();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get cuts() {
      return cuts;
    },
    cutNextReply() {
      armed = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
