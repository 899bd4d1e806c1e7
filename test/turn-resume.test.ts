/**
 * The seam a tool approval needs: a turn stopped before a proposed tool call (the worker's tool
 * gate says 'stop') is parked with its state in the store, holding no worker slot and no queue
 * job, and a later job naming the run resumes it from the store. Resumed, the turn stores the same
 * events as one that never stopped (same seqs, tool results, text and usage) and sends the model
 * the same prompt. On Postgres with BullMQ and on PGlite with the in-process queue.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { openStore, type Store } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { staleRuns, strandedRuns } from '../db/run-liveness.repository.js';
import type { ToolCallRecord } from '../db/schema.js';
import { recordTurn } from '../db/turns.repository.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { createTurnQueue, type TurnQueue } from '../queue/index.js';
import { createLlmClient } from '../workers/llm-client.js';
import { startLlmSim, type LlmSim } from '../workers/llm-sim.js';
import { builtinTools, ToolRegistry } from '../workers/tools/registry.js';
import type { ToolVerdict } from '../workers/turn/tool-gate.js';
import { startWorker, type TurnWorker } from '../workers/worker.js';
import { closeConnection } from '../redis/connections.js';
import { createTestDatabase, testRedis, uniquePrefix } from './support/database.js';
import { waitFor, within } from './support/wait.js';

type Backend = 'postgres+bullmq' | 'pglite+inline';

interface Ctx {
  store: Store;
  sim: LlmSim;
  queue: TurnQueue;
  worker: TurnWorker;
  /** BullMQ's view of the queue (postgres+bullmq only). */
  jobs?: Queue;
  /** Arguments the calculator actually ran with. */
  calculated: string[];
  /** Per run: the gate's plan (stop once on a matching call, then answer with `then`). */
  plans: Map<string, { stopOn: (call: ToolCallRecord) => boolean; stopped: boolean; then: ToolVerdict }>;
  cleanup: Array<() => Promise<unknown>>;
}

const owner = { workspaceId: 'acme', userId: 'alice' };
const JOB_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'] as const;

async function open(backend: Backend, ctx: Ctx): Promise<void> {
  ctx.cleanup = [];
  if (backend === 'postgres+bullmq') {
    const database = await createTestDatabase();
    ctx.store = await openStore({ kind: 'postgres', url: database.url, poolSize: 4 });
    ctx.cleanup.push(() => database.drop());
  } else {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-turn-resume-'));
    ctx.store = await openStore({ kind: 'pglite', dataDir });
    ctx.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  }
  ctx.cleanup.push(() => ctx.store.close());
  await migrateToLatest(ctx.store.db);
  ctx.sim = await startLlmSim({ tokenDelayMs: 1 });
  ctx.cleanup.push(() => ctx.sim.close());
  const broker = createBroker({ kind: 'memory' });
  ctx.cleanup.push(() => broker.close());
  const log = pino({ level: process.env.TEST_LOG ?? 'silent' });
  const events = new GroupCommitEventLog(ctx.store.db, broker, log);
  ctx.cleanup.push(() => events.close());
  if (backend === 'postgres+bullmq') {
    const redis = testRedis(uniquePrefix());
    ctx.queue = createTurnQueue({ kind: 'bullmq', redis, onError: () => {} });
    const connection = redis.connect('queue');
    ctx.jobs = new Queue('turns', { connection, prefix: `${redis.prefix}bull` });
    ctx.cleanup.push(async () => {
      await ctx.jobs!.close();
      await closeConnection(connection);
    });
  } else {
    ctx.queue = createTurnQueue({ kind: 'inline' });
  }
  ctx.cleanup.push(() => ctx.queue.close());
  ctx.calculated = [];
  const calculator = builtinTools.find((tool) => tool.name === 'calculator')!;
  const tools = new ToolRegistry(builtinTools.map((tool) => tool !== calculator ? tool : {
    ...calculator,
    execute: (args: { expression: string }, context) => {
      ctx.calculated.push(args.expression);
      return calculator.execute(args, context);
    },
  }));
  ctx.plans = new Map();
  ctx.worker = await startWorker({
    db: ctx.store.db, broker, events, queue: ctx.queue, tools, log,
    llm: createLlmClient({ baseURL: ctx.sim.baseURL, apiKey: 'test', timeoutMs: 10_000, maxRetries: 0 }),
    model: 'sim-1',
    // One slot: a parked run that held it would stop every other turn.
    concurrency: 1,
    sweepIntervalMs: 100,
    runStaleMs: 1_000,
    toolGate: ({ runId, call }) => {
      const plan = ctx.plans.get(runId);
      if (!plan || !plan.stopOn(call)) return 'run';
      if (plan.stopped) return plan.then;
      plan.stopped = true;
      return 'stop';
    },
  });
  ctx.cleanup.push(() => ctx.worker.close());
}

/** Sends `content` as a user would (a stored turn, then its job); with `stopOn`, the run stops once at the first call it matches. */
async function send(ctx: Ctx, content: string, options: { threadId?: string; stopOn?: (call: ToolCallRecord) => boolean; then?: ToolVerdict } = {}) {
  const turn = await recordTurn(ctx.store.db, owner, { content, threadId: options.threadId });
  if (options.stopOn) ctx.plans.set(turn.runId, { stopOn: options.stopOn, stopped: false, then: options.then ?? 'run' });
  await ctx.queue.enqueue({ runId: turn.runId, threadId: turn.threadId });
  return turn;
}

async function runEvents(ctx: Ctx, threadId: string) {
  const rows = await ctx.store.db.selectFrom('events').select(['seq', 'type', 'run_id', 'payload']).where('thread_id', '=', threadId).orderBy('seq').execute();
  return rows;
}

async function completed(ctx: Ctx, threadId: string, runId: string): Promise<void> {
  await waitFor(async () => (await runEvents(ctx, threadId)).some((e) => e.type === 'agent_completed' && e.run_id === runId), 20_000, `agent_completed of ${runId}`);
}

/**
 * The thread's events (gap-free seqs checked) with what differs between two threads taken out: ids,
 * times, seqs, tool timing, and where the streamed text was cut (the coalescer writes a delta per
 * 50 ms), so consecutive deltas are joined. With `only`, the events of those runs alone.
 */
async function comparable(ctx: Ctx, threadId: string, only?: string[]) {
  let events = await runEvents(ctx, threadId);
  assert.equal(events.map((e) => e.seq), events.map((_, i) => i + 1), 'gap-free seqs');
  if (only) events = events.filter((e) => only.includes(e.run_id!));
  const ids = new Map<string, string>();
  const same = (value: unknown): unknown => {
    if (typeof value === 'string' && /^(t|m|run)_[A-Za-z0-9_-]{10,}$/.test(value)) {
      if (!ids.has(value)) ids.set(value, `<id ${ids.size}>`);
      return ids.get(value);
    }
    if (Array.isArray(value)) return value.map(same);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).filter(([key]) => !['seq', 'timestamp', 'created_at', 'duration_ms'].includes(key)).map(([key, v]) => [key, same(v)]));
    }
    return value;
  };
  const joined: Array<{ type: string; payload: any }> = [];
  for (const { type, payload } of events.map((e) => same({ type: e.type, payload: e.payload }) as { type: string; payload: any })) {
    const last = joined.at(-1);
    if (type === 'message_delta' && last?.type === 'message_delta' && last.payload.message_id === payload.message_id) last.payload.delta += payload.delta;
    else joined.push({ type, payload });
  }
  return joined;
}

/** The stored messages of one run (its user message included), oldest first. */
async function messages(ctx: Ctx, runId: string) {
  const rows = await ctx.store.db.selectFrom('messages').select(['role', 'content', 'tool_calls', 'tool_call_id']).where('run_id', '=', runId).orderBy('created_at').orderBy('id').execute();
  return rows.map((m) => [m.role, m.content, m.tool_calls?.map((c) => c.function.name) ?? null, m.tool_call_id]);
}

/** What shows that the parked run holds nothing: no worker slot, no queue job, nothing the sweeper would touch. */
async function holdsNothing(ctx: Ctx, runId: string): Promise<void> {
  // Other runs' jobs end a moment after their last write: wait for them to drain (a parked run
  // that held a slot or a job would keep these from ever reaching zero).
  await waitFor(() => ctx.worker.activeCount() === 0, 10_000, 'no worker slot held');
  if (ctx.jobs) await waitFor(async () => Object.values(await ctx.jobs!.getJobCounts(...JOB_STATES)).every((n) => n === 0), 10_000, 'no queue job');
  const run = await ctx.store.db.selectFrom('runs').select(['status']).where('id', '=', runId).executeTakeFirstOrThrow();
  assert.is(run.status, 'running', 'the run still holds its thread');
  assert.not.ok((await staleRuns(ctx.store.db, 0)).some((r) => r.id === runId), 'never stale: no sweeper takes it over');
  assert.not.ok((await strandedRuns(ctx.store.db, 0)).some((r) => r.id === runId), 'not a stranded queued run');
}

async function parked(ctx: Ctx, runId: string): Promise<void> {
  await waitFor(() => ctx.plans.get(runId)!.stopped && ctx.worker.activeCount() === 0, 20_000, `run ${runId} parked`);
}

for (const backend of ['postgres+bullmq', 'pglite+inline'] as const) {
  const test = suite<Ctx>(`turn resume (${backend})`);
  test.before(async (ctx) => within(open(backend, ctx), 60_000, `opening ${backend}`));
  test.after(async (ctx) => {
    for (const step of (ctx.cleanup ?? []).reverse()) await step().catch(() => {});
  });

  test('stopped before its only tool call, resumed by a new job: the events, text, usage and prompt of an uninterrupted turn', async (ctx) => {
    const content = '[[say:Let me work that out.]] calculate 6*7 please';
    const reference = await send(ctx, content);
    await completed(ctx, reference.threadId, reference.runId);
    const referenceRequests = ctx.sim.requests.length;

    const stopped = await send(ctx, content, { stopOn: (call) => call.function.name === 'calculator' });
    await parked(ctx, stopped.runId);
    const calculatedBefore = ctx.calculated.length;
    await holdsNothing(ctx, stopped.runId);
    // Stored: the text written so far and the assistant message with the proposed call; nothing ran.
    const whileParked = await runEvents(ctx, stopped.threadId);
    assert.equal(whileParked.map((e) => e.type).filter((t) => t !== 'message_delta'), ['message_created', 'agent_started', 'agent_thinking']);
    assert.is(whileParked.filter((e) => e.type === 'message_delta').map((e) => (e.payload as { delta: string }).delta).join(''), 'Let me work that out.');
    assert.equal(await messages(ctx, stopped.runId), [['user', content, null, null], ['assistant', '', ['calculator'], null]]);

    // A second message on the parked thread waits behind it; the only worker slot is free: another
    // thread's turn, queued after that message's job, runs to its end meanwhile.
    const behind = await send(ctx, 'And after that?', { threadId: stopped.threadId });
    const other = await send(ctx, 'Something else entirely');
    await completed(ctx, other.threadId, other.runId);
    await holdsNothing(ctx, stopped.runId);
    assert.is((await ctx.store.db.selectFrom('runs').select('status').where('id', '=', behind.runId).executeTakeFirstOrThrow()).status, 'queued');
    assert.is(ctx.calculated.length, calculatedBefore, 'the stopped call did not run');
    const requestsBeforeResume = ctx.sim.requests.length;

    await ctx.queue.enqueue({ runId: stopped.runId, threadId: stopped.threadId }, { key: 'resume-1' });
    await completed(ctx, stopped.threadId, stopped.runId);
    await completed(ctx, stopped.threadId, behind.runId);

    const resumed = await comparable(ctx, stopped.threadId, [stopped.runId]);
    assert.equal(resumed, await comparable(ctx, reference.threadId));
    const done = resumed.at(-1) as any;
    assert.is(done.payload.status, 'completed');
    assert.is(done.payload.message.content, 'Let me work that out.The calculator tool says 42.');
    assert.ok(done.payload.usage.prompt_tokens > 0 && done.payload.usage.completion_tokens > 0, 'usage of both model steps');
    assert.equal(ctx.calculated.slice(calculatedBefore), ['6*7'], 'the call ran once, on resume');
    // The resumed step's prompt, rebuilt from the store, is the one the uninterrupted turn sent.
    assert.equal(ctx.sim.requests[requestsBeforeResume]!.body, ctx.sim.requests[referenceRequests - 1]!.body);
    assert.equal(await messages(ctx, stopped.runId), await messages(ctx, reference.runId));
    assert.is((await ctx.store.db.selectFrom('runs').select('status').where('id', '=', behind.runId).executeTakeFirstOrThrow()).status, 'completed', 'the waiting run was woken');
  });

  test('stopped before the second of two calls: the first result is kept, the second runs on resume', async (ctx) => {
    const content = '[[tool:calculator {"expression":"6*7"}]] [[tool:calculator {"expression":"2+2"}]] both';
    const reference = await send(ctx, content);
    await completed(ctx, reference.threadId, reference.runId);

    const stopped = await send(ctx, content, { stopOn: (call) => call.function.arguments.includes('2+2') });
    await parked(ctx, stopped.runId);
    await holdsNothing(ctx, stopped.runId);
    const whileParked = await runEvents(ctx, stopped.threadId);
    assert.equal(whileParked.map((e) => e.type), ['message_created', 'agent_started', 'agent_thinking', 'tool_executing', 'tool_completed']);
    const calculatedBefore = ctx.calculated.length;

    await ctx.queue.enqueue({ runId: stopped.runId, threadId: stopped.threadId }, { key: 'resume-1' });
    await completed(ctx, stopped.threadId, stopped.runId);
    assert.equal(await comparable(ctx, stopped.threadId), await comparable(ctx, reference.threadId));
    assert.equal(ctx.calculated.slice(calculatedBefore), ['2+2'], 'only the stopped call ran on resume');
    assert.equal(await messages(ctx, stopped.runId), await messages(ctx, reference.runId));
  });

  test('told the outcome instead: the call does not run, its result is the one given, the model goes on from it; a second resume job finds nothing', async (ctx) => {
    const stopped = await send(ctx, 'calculate 6*7 please', {
      stopOn: (call) => call.function.name === 'calculator',
      then: { result: 'Error: not approved.' },
    });
    await parked(ctx, stopped.runId);
    const calculatedBefore = ctx.calculated.length;
    await ctx.queue.enqueue({ runId: stopped.runId, threadId: stopped.threadId }, { key: 'resume-1' });
    await completed(ctx, stopped.threadId, stopped.runId);
    // A second resume job (a duplicate answer, say) finds the run finished: it has ended once a
    // turn queued after it on the single slot has.
    await ctx.queue.enqueue({ runId: stopped.runId, threadId: stopped.threadId }, { key: 'resume-2' });
    const after = await send(ctx, 'Anything after that');
    await completed(ctx, after.threadId, after.runId);
    const events = await runEvents(ctx, stopped.threadId);
    assert.equal(events.map((e) => e.type).filter((t) => t !== 'message_delta'), ['message_created', 'agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    const result = events.find((e) => e.type === 'tool_completed')!.payload as { result: string; is_error: boolean };
    assert.equal([result.result, result.is_error], ['Error: not approved.', true]);
    const done = events.at(-1)!.payload as { status: string; message: { content: string } };
    assert.equal([done.status, done.message.content], ['completed', 'The calculator tool says Error: not approved..']);
    assert.is(ctx.calculated.length, calculatedBefore, 'the calculator never ran');
  });

  test.run();
}
