/**
 * Waiting runs at the worker: a call to a tool the agent lists in require_approval, or to a tool
 * the client offered for the run, parks the run with its wait and request event (holding no
 * worker slot and no queue job, invisible to the stale-run sweeper, the stranded-run sweep and a
 * single node's start-up recovery); the answer, stored as the gateway stores it, and a resume job
 * continue it from the store. The workers' sweep expires waits past their deadline and queues the
 * resume of an answered run whose job was lost. On Postgres with BullMQ and on PGlite with the
 * in-process queue.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { insertAgent } from '../db/agents.repository.js';
import { createBroker } from '../broker/index.js';
import { openStore, type Store } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { runningRunIds, staleRuns, strandedRuns } from '../db/run-liveness.repository.js';
import { answerToolWait, type ToolAnswer } from '../db/tool-wait-answers.repository.js';
import { unresumedRuns } from '../db/tool-waits.repository.js';
import { recordTurn } from '../db/turns.repository.js';
import type { ClientToolDef } from '../db/schema.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { createTurnQueue, type TurnQueue } from '../queue/index.js';
import { enqueueResume } from '../queue/turn-queue.js';
import { closeConnection } from '../redis/connections.js';
import { createLlmClient } from '../workers/llm-client.js';
import { startLlmSim, type LlmSim } from '../workers/llm-sim.js';
import { failOrphanedRuns } from '../workers/recovery.js';
import { builtinTools, ToolRegistry } from '../workers/tools/registry.js';
import { startWorker, type TurnWorker } from '../workers/worker.js';
import { ActiveRuns } from '../workers/active-runs.js';
import { approvalGate } from '../workers/turn/approval-gate.js';
import type { TurnDeps } from '../workers/turn/deps.js';
import { createTurnProcessor } from '../workers/turn/processor.js';
import { checkServerFrame } from '../protocol/validate.js';
import { createTestDatabase, testRedis, uniquePrefix } from './support/database.js';
import { waitFor, within } from './support/wait.js';

type Backend = 'postgres+bullmq' | 'pglite+inline';

interface Ctx {
  store: Store;
  sim: LlmSim;
  queue: TurnQueue;
  worker: TurnWorker;
  jobs?: Queue;
  /** Arguments the calculator actually ran with. */
  calculated: string[];
  /** Agents: calculator needs approval (an hour; a second). */
  guarded: string;
  hasty: string;
  log: pino.Logger;
  /** The worker's dependencies, for a processor of the test's own. */
  deps: Omit<TurnDeps, 'activeRuns'>;
  cleanup: Array<() => Promise<unknown>>;
}

const owner = { workspaceId: 'acme', userId: 'alice' };
const JOB_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'] as const;
const PICK_COLOR: ClientToolDef = {
  name: 'pick_color',
  description: 'Asks the user to pick a colour in the page.',
  parameters: { type: 'object', properties: { shade: { type: 'string' } }, required: ['shade'] },
};

async function open(backend: Backend, ctx: Ctx): Promise<void> {
  ctx.cleanup = [];
  if (backend === 'postgres+bullmq') {
    const database = await createTestDatabase();
    ctx.store = await openStore({ kind: 'postgres', url: database.url, poolSize: 4 });
    ctx.cleanup.push(() => database.drop());
  } else {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-tool-waits-'));
    ctx.store = await openStore({ kind: 'pglite', dataDir });
    ctx.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  }
  ctx.cleanup.push(() => ctx.store.close());
  await migrateToLatest(ctx.store.db);
  ctx.sim = await startLlmSim({ tokenDelayMs: 1 });
  ctx.cleanup.push(() => ctx.sim.close());
  const broker = createBroker({ kind: 'memory' });
  ctx.cleanup.push(() => broker.close());
  ctx.log = pino({ level: process.env.TEST_LOG ?? 'silent' });
  const events = new GroupCommitEventLog(ctx.store.db, broker, ctx.log);
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
  const agent = (name: string, approval_timeout_s: number) =>
    insertAgent(ctx.store.db, owner.workspaceId, { name, tools: ['calculator', 'get_current_time'], require_approval: ['calculator'], approval_timeout_s });
  ctx.guarded = (await agent('Guarded', 3600)).id;
  ctx.hasty = (await agent('Hasty', 1)).id;
  ctx.deps = {
    db: ctx.store.db, broker, events, queue: ctx.queue, tools, log: ctx.log,
    llm: createLlmClient({ baseURL: ctx.sim.baseURL, apiKey: 'test', timeoutMs: 10_000, maxRetries: 0 }),
    model: 'sim-1',
  };
  ctx.worker = await startWorker({
    ...ctx.deps,
    // One slot: a waiting run that held it would stop every other turn.
    concurrency: 1,
    sweepIntervalMs: 100,
    strandedAfterMs: 500,
    runStaleMs: 1_000,
  });
  ctx.cleanup.push(() => ctx.worker.close());
}

async function send(ctx: Ctx, content: string, options: { agentId?: string; threadId?: string; clientTools?: ClientToolDef[] } = {}) {
  const turn = await recordTurn(ctx.store.db, owner, { content, agentId: options.agentId, threadId: options.threadId, clientTools: options.clientTools });
  await ctx.queue.enqueue({ runId: turn.runId, threadId: turn.threadId });
  return turn;
}

/** The thread's stored events, each checked against the protocol's schema of its type. */
async function events(ctx: Ctx, threadId: string) {
  const rows = await ctx.store.db.selectFrom('events').select(['seq', 'type', 'run_id', 'payload']).where('thread_id', '=', threadId).orderBy('seq').execute();
  for (const row of rows) assert.is(checkServerFrame({ type: row.type, payload: row.payload }), null, `stored ${row.type} matches its schema`);
  return rows;
}

const types = async (ctx: Ctx, threadId: string) => (await events(ctx, threadId)).map((e) => e.type).filter((t) => t !== 'message_delta');

async function completed(ctx: Ctx, threadId: string, runId: string): Promise<any> {
  let done: any;
  await waitFor(async () => {
    done = (await events(ctx, threadId)).find((e) => e.type === 'agent_completed' && e.run_id === runId)?.payload;
    return done !== undefined;
  }, 20_000, `agent_completed of ${runId}`);
  return done;
}

/** Waits for the run's request event; then checks it holds nothing a running turn would. */
async function waiting(ctx: Ctx, threadId: string, runId: string, type: 'approval_requested' | 'client_tool_requested'): Promise<any> {
  let request: any;
  await waitFor(async () => {
    request = (await events(ctx, threadId)).find((e) => e.type === type && e.run_id === runId)?.payload;
    return request !== undefined;
  }, 20_000, `${type} of ${runId}`);
  await waitFor(() => ctx.worker.activeCount() === 0, 10_000, 'no worker slot held');
  if (ctx.jobs) await waitFor(async () => Object.values(await ctx.jobs!.getJobCounts(...JOB_STATES)).every((n) => n === 0), 10_000, 'no queue job');
  const run = await ctx.store.db.selectFrom('runs').select(['status', 'waiting_since']).where('id', '=', runId).executeTakeFirstOrThrow();
  assert.is(run.status, 'running', 'the run keeps its thread');
  assert.ok(run.waiting_since, 'stored as waiting');
  assert.not.ok((await staleRuns(ctx.store.db, 0)).some((r) => r.id === runId), 'never stale: no sweeper takes it over');
  assert.not.ok((await strandedRuns(ctx.store.db, 0)).some((r) => r.id === runId), 'not a stranded queued run');
  assert.not.ok((await runningRunIds(ctx.store.db)).includes(runId), 'not an orphan for a restarting single node');
  return request;
}

/** Answers as the gateway does: the stored answer, then its resume job. */
async function answer(ctx: Ctx, runId: string, toolCallId: string, given: ToolAnswer, options: { resume?: boolean } = {}) {
  const outcome = await answerToolWait(ctx.store.db, owner, runId, toolCallId, given);
  assert.is(outcome.kind, 'answered', JSON.stringify(outcome));
  if (outcome.kind !== 'answered') throw new Error('unreachable');
  assert.ok(outcome.resume, 'nothing else pending: the run is to be resumed');
  if (options.resume !== false) await enqueueResume(ctx.queue, { runId, threadId: outcome.threadId }, outcome.resume!.attempt);
  return outcome;
}

for (const backend of ['postgres+bullmq', 'pglite+inline'] as const) {
  const test = suite<Ctx>(`tool waits (${backend})`);
  test.before(async (ctx) => within(open(backend, ctx), 60_000, `opening ${backend}`));
  test.after(async (ctx) => {
    for (const step of (ctx.cleanup ?? []).reverse()) await step().catch(() => {});
  });

  test('a call needing approval parks the run holding nothing; approved, the tool runs and the model goes on; other turns ran meanwhile', async (ctx) => {
    const turn = await send(ctx, '[[say:One moment.]] calculate 6*7 please', { agentId: ctx.guarded });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    assert.equal([request.tool_name, request.arguments], ['calculator', { expression: '6*7' }]);
    const expires = Date.parse(request.expires_at) - Date.parse(request.timestamp);
    assert.ok(expires > 3_590_000 && expires <= 3_600_000, `expires after the agent's approval_timeout_s: ${expires} ms`);
    assert.equal(await types(ctx, turn.threadId), ['message_created', 'agent_started', 'agent_thinking', 'approval_requested']);
    // Another thread's turn takes the only slot meanwhile; a single node restarting leaves the wait alone.
    const other = await send(ctx, 'Something else entirely');
    assert.is((await completed(ctx, other.threadId, other.runId)).status, 'completed');
    assert.is(await failOrphanedRuns(ctx.store.db, ctx.log), 0, 'start-up recovery fails no waiting run');
    assert.equal(ctx.calculated, [], 'nothing ran before the approval');

    await answer(ctx, turn.runId, request.tool_call_id, { approved: true });
    const done = await completed(ctx, turn.threadId, turn.runId);
    assert.equal([done.status, done.message.content], ['completed', 'One moment.The calculator tool says 42.']);
    assert.equal(await types(ctx, turn.threadId), [
      'message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_executing', 'tool_completed', 'agent_completed',
    ]);
    const all = await events(ctx, turn.threadId);
    assert.equal(all.map((e) => e.seq), all.map((_, i) => i + 1), 'gap-free');
    assert.equal((all.find((e) => e.type === 'approval_resolved')!.payload as any).status, 'approved');
    assert.equal(ctx.calculated, ['6*7'], 'ran once, after the approval');
    const run = await ctx.store.db.selectFrom('runs').select(['status', 'waiting_since']).where('id', '=', turn.runId).executeTakeFirstOrThrow();
    assert.equal(run, { status: 'completed', waiting_since: null });
  });

  test('denied: the call never runs; the model is told so with the reason and the run ends normally', async (ctx) => {
    const turn = await send(ctx, 'calculate 2+2 please', { agentId: ctx.guarded });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    const before = ctx.calculated.length;
    await answer(ctx, turn.runId, request.tool_call_id, { approved: false, reason: 'not on a Sunday' });
    const done = await completed(ctx, turn.threadId, turn.runId);
    assert.is(done.status, 'completed');
    assert.match(done.message.content, /denied.*Reason: not on a Sunday/);
    assert.equal(await types(ctx, turn.threadId), [
      'message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_completed', 'agent_completed',
    ]);
    const all = await events(ctx, turn.threadId);
    const resolved = all.find((e) => e.type === 'approval_resolved')!.payload as any;
    assert.equal([resolved.tool_call_id, resolved.tool_name, resolved.status, resolved.reason], [request.tool_call_id, 'calculator', 'denied', 'not on a Sunday']);
    assert.is((all.find((e) => e.type === 'tool_completed')!.payload as any).is_error, true);
    assert.is(ctx.calculated.length, before, 'the calculator never ran');
  });

  test('unanswered past approval_timeout_s: the sweep expires it and the model is told the request expired', async (ctx) => {
    const turn = await send(ctx, 'calculate 9*9 please', { agentId: ctx.hasty });
    await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    const before = ctx.calculated.length;
    const done = await completed(ctx, turn.threadId, turn.runId);
    assert.is(done.status, 'completed');
    assert.match(done.message.content, /expired/);
    const all = await events(ctx, turn.threadId);
    assert.is((all.find((e) => e.type === 'approval_resolved')!.payload as any).status, 'expired');
    assert.not.ok(all.some((e) => e.type === 'tool_executing'), 'the tool never started');
    assert.is(ctx.calculated.length, before);
    // Too late now: the expiry was the answer.
    const late = await answerToolWait(ctx.store.db, owner, turn.runId, (all.find((e) => e.type === 'approval_requested')!.payload as any).tool_call_id, { approved: true });
    assert.equal(late, { kind: 'already_answered', status: 'expired' });
  });

  test('a resume job lost at answer time: the sweep queues it again', async (ctx) => {
    const turn = await send(ctx, 'calculate 3*3 please', { agentId: ctx.guarded });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    await answer(ctx, turn.runId, request.tool_call_id, { approved: true }, { resume: false });
    assert.equal((await unresumedRuns(ctx.store.db, 0)).map((r) => r.id), [turn.runId], 'answered, waiting, no job');
    const done = await completed(ctx, turn.threadId, turn.runId);
    assert.match(done.message.content, /says 9\./);
  });

  test('a client tool: offered to the model beside the agent\'s; its call waits for the client, whose result is the tool\'s', async (ctx) => {
    const requests = ctx.sim.requests.length;
    const turn = await send(ctx, '[[tool:pick_color {"shade":"dark"}]] pick one', { clientTools: [PICK_COLOR] });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'client_tool_requested');
    assert.equal([request.tool_name, request.arguments], ['pick_color', { shade: 'dark' }]);
    const offered = (ctx.sim.requests[requests]!.body as any).tools.map((t: any) => t.function.name);
    assert.equal(offered, ['get_current_time', 'calculator', 'pick_color']);
    assert.equal((ctx.sim.requests[requests]!.body as any).tools[2].function, { name: 'pick_color', description: PICK_COLOR.description, parameters: PICK_COLOR.parameters });
    const outcome = await answer(ctx, turn.runId, request.tool_call_id, { result: 'navy' });
    assert.is(outcome.status, 'answered');
    const done = await completed(ctx, turn.threadId, turn.runId);
    assert.equal([done.status, done.message.content], ['completed', 'The pick_color tool says navy.']);
    assert.equal(await types(ctx, turn.threadId), ['message_created', 'agent_started', 'agent_thinking', 'client_tool_requested', 'tool_completed', 'agent_completed']);
    const result = (await events(ctx, turn.threadId)).find((e) => e.type === 'tool_completed')!.payload as any;
    assert.equal([result.name, result.result, result.is_error], ['pick_color', 'navy', false]);
    // The resumed step sent the model the client's answer as the call's result.
    const last = (ctx.sim.requests.at(-1)!.body as any).messages.at(-1);
    assert.equal([last.role, last.tool_call_id, last.content], ['tool', request.tool_call_id, 'navy']);
  });

  test('a second answer finds the first; an approval answered with a result is refused', async (ctx) => {
    const turn = await send(ctx, 'calculate 5*5 please', { agentId: ctx.guarded });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    assert.equal(await answerToolWait(ctx.store.db, owner, turn.runId, request.tool_call_id, { result: 'yes' }), { kind: 'mismatch', waitKind: 'approval' });
    assert.equal(await answerToolWait(ctx.store.db, { ...owner, userId: 'mallory' }, turn.runId, request.tool_call_id, { approved: true }), { kind: 'not_found' });
    assert.equal(await answerToolWait(ctx.store.db, owner, turn.runId, 'call_forged', { approved: true }), { kind: 'not_found' });
    await answer(ctx, turn.runId, request.tool_call_id, { approved: true });
    assert.equal(await answerToolWait(ctx.store.db, owner, turn.runId, request.tool_call_id, { approved: false }), { kind: 'already_answered', status: 'approved' });
    assert.is((await completed(ctx, turn.threadId, turn.runId)).status, 'completed');
  });

  test('a re-delivery of the job that parked the run leaves the waiting run alone', async (ctx) => {
    const turn = await send(ctx, 'calculate 4*4 please', { agentId: ctx.guarded });
    const request = await waiting(ctx, turn.threadId, turn.runId, 'approval_requested');
    const before = await ctx.store.db.selectFrom('runs').select(['attempt', 'waiting_since']).where('id', '=', turn.runId).executeTakeFirstOrThrow();
    const seen = (await events(ctx, turn.threadId)).length;
    // What a queue hands over when the parking worker died before its job ended: the same job again,
    // which claimed the attempt the run is parked with.
    const { claimed_by: jobId } = await ctx.store.db.selectFrom('runs').select('claimed_by').where('id', '=', turn.runId).executeTakeFirstOrThrow();
    assert.ok(jobId, 'the claim stored the job that claimed');
    const processor = createTurnProcessor({ ...ctx.deps, activeRuns: new ActiveRuns(), toolGate: approvalGate(ctx.store.db) });
    await processor({ runId: turn.runId, threadId: turn.threadId }, { signal: new AbortController().signal, takeover: true, jobId: jobId! });
    assert.equal(await ctx.store.db.selectFrom('runs').select(['attempt', 'waiting_since']).where('id', '=', turn.runId).executeTakeFirstOrThrow(), before, 'not taken over');
    assert.is((await events(ctx, turn.threadId)).length, seen, 'nothing written');
    await answer(ctx, turn.runId, request.tool_call_id, { approved: true });
    assert.match((await completed(ctx, turn.threadId, turn.runId)).message.content, /says 16\./);
  });

  test.run();
}
