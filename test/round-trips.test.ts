/**
 * What a turn costs the store, counted statement by statement (each one round trip) on both
 * stores: message.send (recordTurn) and the claim at most two each, the context read and the
 * run's last write one each, cancelling a queued run one; and recordTurn's behaviour through its
 * one call: dedupe, busy policies, the active-run cap rolled back with an interrupt, refusals.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore, type Store } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { StatementCounter } from '../db/statement-counter.js';
import { recordTurn, TurnRejected } from '../db/turns.repository.js';
import { cancelQueuedRun, claimRun } from '../db/runs.repository.js';
import { listThreadMessages } from '../db/messages.repository.js';
import { createBroker } from '../broker/index.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { BatchedReads } from '../server/batched-reads.js';
import { appendEvent } from '../db/events.repository.js';
import { RunEmitter } from '../workers/run-emitter.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { within } from './support/wait.js';

interface Ctx {
  store: Store;
  counter: StatementCounter;
  cleanup: () => Promise<void>;
}

const stores: Record<string, () => Promise<Omit<Ctx, 'counter'> & { counter: StatementCounter }>> = {
  postgres: async () => {
    const database: TestDatabase = await createTestDatabase();
    const counter = new StatementCounter();
    const store = await openStore({ kind: 'postgres', url: database.url, poolSize: 2 }, counter);
    return { store, counter, cleanup: async () => { await store.close(); await database.drop(); } };
  },
  pglite: async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-round-trips-'));
    const counter = new StatementCounter();
    const store = await openStore({ kind: 'pglite', dataDir }, counter);
    return { store, counter, cleanup: async () => { await store.close(); await rm(dataDir, { recursive: true, force: true }); } };
  },
};

for (const [name, open] of Object.entries(stores)) {
  const test = suite<Ctx>(`round trips (${name})`);
  test.before(async (ctx) => {
    Object.assign(ctx, await within(open(), 30_000, `opening ${name}`));
    await migrateToLatest(ctx.store.db);
  });
  test.after(async (ctx) => {
    await ctx.cleanup?.();
  });

  /** Runs `fn` and returns its result with the statements it sent. */
  async function counted<T>(ctx: Ctx, fn: () => Promise<T>): Promise<{ value: T; statements: number }> {
    const before = ctx.counter.statementCount();
    const value = await fn();
    return { value, statements: ctx.counter.statementCount() - before };
  }

  async function refusal(ctx: Ctx, fn: () => Promise<unknown>): Promise<{ code: string; statements: number }> {
    const { value, statements } = await counted(ctx, () => fn().then(() => undefined, (error: unknown) => error));
    assert.instance(value, TurnRejected);
    return { code: (value as TurnRejected).code, statements };
  }

  const alice = { workspaceId: 'acme', userId: 'alice' };

  test('message.send, the claim, the context read, the last write: at most two, two, one and one round trip', async (ctx) => {
    const db = ctx.store.db;
    const sent = await counted(ctx, () => recordTurn(db, alice, { content: 'What time is it, roughly speaking, on a long afternoon like this one?' }));
    assert.ok(sent.statements <= 2, `recordTurn on a new thread: ${sent.statements}`);
    const turn = sent.value;
    assert.equal([turn.deduplicated, turn.fromSeq, turn.cancelledEvents, turn.interruptRunIds], [false, 1, [], []]);
    const thread = await db.selectFrom('threads').selectAll().where('id', '=', turn.threadId).executeTakeFirstOrThrow();
    assert.equal([thread.title, thread.last_seq, thread.agent_id], ['What time is it, roughly speaking, on a long afternoon like this one?'.slice(0, 80), 1, 'ag_default']);
    const event = JSON.parse(turn.event!.frame);
    assert.equal([event.type, event.payload.seq, event.payload.message.id, event.payload.message.role], ['message_created', 1, turn.messageId, 'user']);

    const claimed = await counted(ctx, () => claimRun(db, turn.runId));
    assert.ok(claimed.statements <= 2, `claimRun: ${claimed.statements}`);
    const claim = claimed.value;
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    assert.equal([claim.run.status, claim.run.attempt, claim.thread.last_seq, claim.agent.id, claim.restarted], ['running', 1, 1, 'ag_default', false]);
    assert.instance(claim.run.started_at, Date);
    assert.instance(claim.thread.created_at, Date);
    assert.equal(claim.agent.tools, ['get_current_time', 'calculator']);

    const context = await counted(ctx, () => listThreadMessages(db, turn.threadId));
    assert.is(context.statements, 1, 'the context read');
    assert.equal(context.value.map((m) => [m.id, m.role]), [[turn.messageId, 'user']]);

    const broker = createBroker({ kind: 'memory' });
    const log = new GroupCommitEventLog(db, broker, pino({ level: 'silent' }));
    const emitter = new RunEmitter(db, turn.threadId, claim.fence, pino({ level: 'silent' }), { afterSeq: 1, events: log });
    const messageId = claim.run.assistant_message_id!;
    const started = await counted(ctx, () => emitter.emitAll([
      { type: 'agent_started', payload: { agent_id: 'ag_default', agent_name: 'Assistant' } },
      { type: 'agent_thinking', payload: {} },
    ]));
    assert.is(started.statements, 1, 'the two opening events');
    const last = await counted(ctx, () => emitter.complete(
      { status: 'completed', message: { id: messageId, role: 'assistant', content: 'Noon.', run_id: turn.runId } },
      { status: 'completed' },
      { message: { id: messageId, role: 'assistant', content: 'Noon.' }, before: [{ type: 'message_delta', payload: { message_id: messageId, delta: 'Noon.' } }] },
    ));
    assert.is(last.statements, 1, 'the last write: delta, answer, agent_completed, run finished');
    const run = await db.selectFrom('runs').select(['status']).where('id', '=', turn.runId).executeTakeFirstOrThrow();
    assert.is(run.status, 'completed');
    assert.equal((await listThreadMessages(db, turn.threadId)).map((m) => [m.role, m.content]), [['user', 'What time is it, roughly speaking, on a long afternoon like this one?'], ['assistant', 'Noon.']]);
    await log.close();
    await broker.close();
  });

  test('a retried send is found in one call and stores nothing; a foreign thread or agent is refused', async (ctx) => {
    const db = ctx.store.db;
    const first = await recordTurn(db, alice, { content: 'Once', clientMessageId: 'cm-1' });
    const again = await counted(ctx, () => recordTurn(db, alice, { content: 'Once', clientMessageId: 'cm-1' }));
    assert.ok(again.statements <= 2);
    assert.equal(again.value, { threadId: first.threadId, messageId: first.messageId, runId: first.runId, fromSeq: first.fromSeq, deduplicated: true, cancelledEvents: [], interruptRunIds: [] });
    const inThread = await recordTurn(db, alice, { content: 'Once', clientMessageId: 'cm-1', threadId: first.threadId });
    assert.is(inThread.deduplicated, true);
    assert.is((await db.selectFrom('messages').select('id').where('thread_id', '=', first.threadId).execute()).length, 1, 'one message');

    // The same key from another user is another message.
    const bob = await recordTurn(db, { workspaceId: 'acme', userId: 'bob' }, { content: 'Once', clientMessageId: 'cm-1' });
    assert.is(bob.deduplicated, false);
    assert.is.not(bob.threadId, first.threadId);

    assert.equal(await refusal(ctx, () => recordTurn(db, { workspaceId: 'acme', userId: 'bob' }, { content: 'Mine now', threadId: first.threadId })), { code: 'not_found', statements: 1 });
    assert.equal(await refusal(ctx, () => recordTurn(db, { workspaceId: 'other', userId: 'alice' }, { content: 'Mine now', threadId: first.threadId })), { code: 'not_found', statements: 1 });
    assert.is((await refusal(ctx, () => recordTurn(db, alice, { content: 'x', agentId: 'ag_missing' }))).code, 'not_found');
    assert.is((await refusal(ctx, () => recordTurn(db, alice, { content: 'x', threadId: first.threadId, agentId: 'ag_other' }))).code, 'conflict');
  });

  test('the claim stores the job that claimed; a re-delivered job takes over only the attempt it claimed, never a newer one', async (ctx) => {
    const db = ctx.store.db;
    const dave = { workspaceId: 'acme', userId: 'dave' };
    const turn = await recordTurn(db, dave, { content: 'Hello' });
    const claimedBy = async () => (await db.selectFrom('runs').select(['attempt', 'claimed_by']).where('id', '=', turn.runId).executeTakeFirstOrThrow());
    const first = await counted(ctx, () => claimRun(db, turn.runId, { job: 'job-a' }));
    assert.equal([first.value.kind, first.statements], ['claimed', 1], 'recorded by the claim itself: one round trip');
    assert.equal(await claimedBy(), { attempt: 1, claimed_by: 'job-a' });
    // job-a's worker died; the sweeper's takeover (another job) replaced its attempt.
    assert.is((await claimRun(db, turn.runId, { takeover: true, fromAttempt: 1, job: 'job-b' })).kind, 'claimed');
    assert.equal(await claimedBy(), { attempt: 2, claimed_by: 'job-b' });
    // job-a delivered again: attempt 2 is alive and not job-a's.
    assert.equal(await claimRun(db, turn.runId, { takeover: true, job: 'job-a', fromJob: 'job-a' }), { kind: 'gone', status: 'running' });
    assert.equal(await claimedBy(), { attempt: 2, claimed_by: 'job-b' }, 'not taken over');
    // job-b delivered again (its own worker died): it replaces the attempt it claimed.
    assert.is((await claimRun(db, turn.runId, { takeover: true, job: 'job-b', fromJob: 'job-b' })).kind, 'claimed');
    assert.equal(await claimedBy(), { attempt: 3, claimed_by: 'job-b' });
  });

  test('a starting claim answers with its opening events and the thread as a direct read gives it, in its one round trip', async (ctx) => {
    const db = ctx.store.db;
    const erin = { workspaceId: 'acme', userId: 'erin' };
    // A history with every kind of message: the user's, an assistant's with tool calls, a tool result.
    const first = await recordTurn(db, erin, { content: 'What is 6 * 7, and what time is it? "Quotes", ünïcode, \\ and a\nnewline.' });
    const firstClaim = await claimRun(db, first.runId, { start: true, job: 'job-1' });
    if (firstClaim.kind !== 'claimed') throw new Error(`not claimed: ${firstClaim.kind}`);
    const assistantId = firstClaim.run.assistant_message_id!;
    const toolCalls = [{ id: 'call_1', type: 'function' as const, function: { name: 'calculator', arguments: '{"expression":"6 * 7"}' } }];
    const fence = firstClaim.fence;
    const log = new GroupCommitEventLog(db, createBroker({ kind: 'memory' }), pino({ level: 'silent' }));
    await log.append([
      { threadId: first.threadId, fence, message: { id: assistantId, role: 'assistant', content: '', tool_calls: toolCalls }, draft: { type: 'tool_executing', run_id: first.runId, payload: { tool_call_id: 'call_1', tool_name: 'calculator', arguments: { expression: '6 * 7' } } } },
      { threadId: first.threadId, fence, message: { id: `${assistantId}_t`, role: 'tool', content: '42', tool_call_id: 'call_1' }, draft: { type: 'tool_completed', run_id: first.runId, payload: { tool_call_id: 'call_1', tool_name: 'calculator', result: '42' } } },
      { threadId: first.threadId, fence, finish: { status: 'completed' }, message: { id: `${assistantId}_f`, role: 'assistant', content: 'It is 42.' }, draft: { type: 'agent_completed', run_id: first.runId, payload: { status: 'completed', message: { id: `${assistantId}_f`, role: 'assistant', content: 'It is 42.' } } } },
    ] as never);
    await log.close();
    const second = await recordTurn(db, erin, { content: 'Thanks!', threadId: first.threadId });

    const started = await counted(ctx, () => claimRun(db, second.runId, { start: true, job: 'job-2' }));
    assert.is(started.statements, 1, 'claim, opening events and context in one round trip');
    const claim = started.value;
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    assert.equal(claim.opened!.map((e) => JSON.parse(e.frame)).map((f) => [f.type, f.payload.seq, f.payload.run_id]), [
      ['agent_started', second.fromSeq + 1, second.runId],
      ['agent_thinking', second.fromSeq + 2, second.runId],
    ]);
    assert.is(claim.thread.last_seq, second.fromSeq, 'the thread as the claim locked it, before its opening events');
    assert.instance(claim.thread.updated_at, Date);
    assert.instance(claim.agent.created_at, Date);
    assert.equal(claim.agent.tools, ['get_current_time', 'calculator']);
    // The context the claim read is exactly what a direct read of the thread's messages gives.
    const KEYS = ['id', 'thread_id', 'run_id', 'role', 'content', 'tool_calls', 'tool_call_id', 'client_message_id', 'created_at'] as const;
    const direct = (await listThreadMessages(db, first.threadId)).map((m) => Object.fromEntries(KEYS.map((k) => [k, m[k]])));
    assert.equal(claim.messages!.map((m) => Object.keys(m).sort()), direct.map(() => [...KEYS].sort()), 'the columns a prompt is built from, no more');
    assert.equal(claim.messages, direct);
    assert.equal(claim.messages!.map((m) => m.role).sort(), ['assistant', 'assistant', 'tool', 'user', 'user']);
    const withCalls = claim.messages!.find((m) => m.tool_calls);
    assert.equal(withCalls?.tool_calls, toolCalls, 'tool calls come back as they were stored');
    assert.is(claim.messages!.find((m) => m.role === 'tool')?.tool_call_id, 'call_1');
    assert.is(claim.messages![0]!.content, 'What is 6 * 7, and what time is it? "Quotes", ünïcode, \\ and a\nnewline.');
    for (const m of claim.messages!) assert.instance(m.created_at, Date);
  });

  test('busy policies in one call: reject refuses, interrupt cancels the queued and names the running; over the run cap it all rolls back', async (ctx) => {
    const db = ctx.store.db;
    const carol = { workspaceId: 'acme', userId: 'carol' };
    const running = await recordTurn(db, carol, { content: 'First' });
    const claim = await claimRun(db, running.runId);
    assert.is(claim.kind, 'claimed');
    const queued = await recordTurn(db, carol, { content: 'Second', threadId: running.threadId });
    const waiting = await counted(ctx, () => claimRun(db, queued.runId));
    assert.equal([waiting.value.kind, waiting.statements <= 2], ['wait', true], 'the second run waits for the first');
    assert.equal((await counted(ctx, () => claimRun(db, running.runId))).value, { kind: 'gone', status: 'running' });

    assert.equal(await refusal(ctx, () => recordTurn(db, carol, { content: 'Now!', threadId: running.threadId, onBusy: 'reject' })), { code: 'thread_busy', statements: 1 });
    // Counted after the interrupt cancelled the queued run, the running one alone fills a cap of
    // one: refused, and the cancellation is rolled back with it.
    assert.equal(
      await refusal(ctx, () => recordTurn(db, carol, { content: 'Now!', threadId: running.threadId, onBusy: 'interrupt', maxActiveRuns: 1 })),
      { code: 'rate_limited', statements: 1 },
    );
    const stillQueued = await db.selectFrom('runs').select('status').where('id', '=', queued.runId).executeTakeFirstOrThrow();
    assert.is(stillQueued.status, 'queued', 'the refused send cancelled nothing');
    const lastSeqBefore = (await db.selectFrom('threads').select('last_seq').where('id', '=', running.threadId).executeTakeFirstOrThrow()).last_seq;

    const interrupting = await counted(ctx, () => recordTurn(db, carol, { content: 'Now!', threadId: running.threadId, onBusy: 'interrupt', maxActiveRuns: 2 }));
    assert.ok(interrupting.statements <= 2, `an interrupting send: ${interrupting.statements}`);
    const turn = interrupting.value;
    assert.equal(turn.interruptRunIds, [running.runId], 'the running run is to be signalled');
    assert.is(turn.cancelledEvents.length, 1);
    const cancelled = JSON.parse(turn.cancelledEvents[0]!.frame);
    assert.equal([cancelled.type, cancelled.payload.run_id, cancelled.payload.status, cancelled.payload.seq], ['agent_completed', queued.runId, 'cancelled', lastSeqBefore + 1]);
    assert.match(cancelled.payload.message.id, /^m_[A-Za-z0-9_-]{22}$/);
    assert.is(turn.fromSeq, lastSeqBefore + 2, 'the new message follows the cancellation');
    const statuses = await db.selectFrom('runs').select(['id', 'status']).where('thread_id', '=', running.threadId).orderBy('created_at').execute();
    assert.equal(statuses.map((r) => r.status), ['running', 'cancelled', 'queued']);

    const cancelling = await counted(ctx, () => cancelQueuedRun(db, turn.runId));
    assert.is(cancelling.statements, 1, 'cancelling a queued run');
    assert.is(JSON.parse(cancelling.value!.frame).payload.seq, turn.fromSeq + 1);
    assert.is(await cancelQueuedRun(db, turn.runId), undefined, 'not queued any more');
  });

  test('a storm of owner checks and replay reads asked for in one loop turn: one statement each, every answer its own', async (ctx) => {
    const db = ctx.store.db;
    const dave = { workspaceId: 'acme', userId: 'dave' };
    const threads: string[] = [];
    for (let i = 0; i < 3; i++) threads.push((await recordTurn(db, dave, { content: `Thread ${i}` })).threadId);
    // Thread 0 gets two more events (seq 2 and 3); the others have their message_created only.
    await appendEvent(db, threads[0]!, { type: 'agent_thinking', payload: { attempt: 1 } });
    await appendEvent(db, threads[0]!, { type: 'agent_thinking', payload: { attempt: 2 } });
    const reads = new BatchedReads(db, 2);

    const checks = await counted(ctx, () => Promise.all([
      ...threads.map((id) => reads.ownedThread(id, dave)),
      reads.ownedThread(threads[0]!, dave),
      reads.ownedThread(threads[0]!, { workspaceId: 'acme', userId: 'erin' }),
      reads.ownedThread(threads[0]!, { workspaceId: 'other', userId: 'dave' }),
      reads.ownedThread('th_missing', dave),
    ]));
    assert.is(checks.statements, 1, 'seven owner checks');
    assert.equal(checks.value.map((t) => t?.id), [...threads, threads[0], undefined, undefined, undefined], 'someone else\'s thread looks missing');
    assert.is(checks.value[0]!.last_seq, 3);

    const pages = await counted(ctx, () => Promise.all([
      reads.eventsAfter(threads[0]!, 0),
      reads.eventsAfter(threads[0]!, 0),
      reads.eventsAfter(threads[0]!, 2),
      reads.eventsAfter(threads[0]!, 3),
      reads.eventsAfter(threads[1]!, 0),
      reads.eventsAfter('th_missing', 0),
    ]));
    assert.is(pages.statements, 1, 'six replay reads');
    const seqs = pages.value.map((p) => [p.threadExists, p.events.map((e) => e.seq)]);
    assert.equal(seqs, [[true, [1, 2]], [true, [1, 2]], [true, [3]], [true, []], [true, [1]], [false, []]], 'pages of at most two, each from its own seq');
    const frame = JSON.parse(pages.value[2]!.events[0]!.frame);
    assert.equal([frame.type, frame.payload.seq, frame.payload.attempt], ['agent_thinking', 3, 2]);
    assert.is(pages.value[0], pages.value[1], 'identical reads in one batch are read once');

    // Reads asked for in different loop turns are not held back for one another, and each sees
    // what was written before it was asked for: nothing is cached.
    const first = await reads.eventsAfter(threads[1]!, 1);
    assert.equal(first.events, []);
    await appendEvent(db, threads[1]!, { type: 'agent_thinking', payload: { attempt: 3 } });
    assert.equal((await reads.eventsAfter(threads[1]!, 1)).events.map((e) => e.seq), [2]);
    await db.deleteFrom('threads').where('id', '=', threads[2]!).execute();
    assert.is(await reads.ownedThread(threads[2]!, dave), undefined, 'deleted');
    assert.is((await reads.eventsAfter(threads[2]!, 0)).threadExists, false);

    // One read that fails fails alone: the others of its batch are read again on their own.
    const mixed = await Promise.allSettled([reads.eventsAfter(threads[0]!, 1), reads.eventsAfter(threads[0]!, 1e20), reads.eventsAfter(threads[1]!, 0)]);
    assert.equal(mixed.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(mixed.map((r) => (r.status === 'fulfilled' ? r.value.events.map((e) => e.seq) : 'failed')), [[2, 3], 'failed', [1, 2]]);
  });

  test.run();
}
