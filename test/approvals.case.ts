/**
 * Tool approval over the native protocol, end to end through a gateway and a worker: an agent
 * names the tools that need the thread owner's approval; a call to one makes the run wait
 * (approval_requested, GET /v1/runs/:id says `waiting`), holding no worker slot and no queue job;
 * the owner answers with `tool.approve` or POST /v1/runs/:id/approvals, once; anyone else gets
 * not_found and the tool does not run; run.cancel ends a waiting run at once.
 * (approvals.redis.test.ts, approvals.embedded.test.ts; restarts in approvals-restart.test.ts.)
 */
import { Queue } from 'bullmq';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { signToken } from '../server/auth.js';
import { closeConnection, redisConnections } from '../redis/connections.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import type { Backend } from './support/stack.js';
import type { TestClient } from './support/client.js';
import { RestClient, checkResult } from './support/rest-client.js';
import { REDIS_URL } from './support/database.js';
import { waitFor } from './support/wait.js';

interface Ctx extends StackCtx {
  /** Calculator needs approval: an hour; one second. */
  guarded: string;
  hasty: string;
  alice: RestClient;
  bob: RestClient;
  /** BullMQ's view of the node's queue (redis). */
  jobs?: Queue;
  closeJobs?: () => Promise<void>;
}

const JOB_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'] as const;

export function approvalsSuite(backend: Backend): void {
  const test = suite<Ctx>(`approvals (${backend})`);
  useStack(test, {
    backend,
    setup: async (ctx) => {
      const admin = new RestClient(ctx.base, await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 3600, extra: { role: 'admin' } }));
      const agent = async (name: string, approval_timeout_s: number) => {
        const res = await admin.post('/v1/agents', { name, tools: ['calculator', 'get_current_time'], require_approval: ['calculator'], approval_timeout_s });
        assert.is(res.status, 201, JSON.stringify(res.body));
        return res.body.id as string;
      };
      ctx.guarded = await agent('Guarded', 3600);
      ctx.hasty = await agent('Hasty', 1);
      ctx.alice = new RestClient(ctx.base, await ctx.stack.token('alice'));
      ctx.bob = new RestClient(ctx.base, await ctx.stack.token('bob'));
      if (backend === 'redis') {
        const connection = redisConnections({ url: REDIS_URL, prefix: ctx.stack.prefix }).connect('queue');
        ctx.jobs = new Queue('turns', { connection, prefix: `${ctx.stack.prefix}bull` });
        ctx.closeJobs = async () => {
          await ctx.jobs!.close();
          await closeConnection(connection);
        };
      }
    },
    teardown: async (ctx) => ctx.closeJobs?.(),
  });

  /** A thread of alice's on `agent`, a message that calls the calculator, and its approval_requested. */
  async function ask(ctx: Ctx, client: TestClient, content = 'calculate 6*7 please', agent = ctx.guarded) {
    const created = await client.request('thread.create', { agent_id: agent });
    const threadId: string = created.payload.id;
    const sent = await client.request('message.send', { thread_id: threadId, content });
    assert.is(sent.type, 'ack', JSON.stringify(sent.payload));
    const runId: string = sent.payload.run_id;
    const request = await client.next((f) => f.type === 'approval_requested' && f.payload.run_id === runId, 20_000);
    return { threadId, runId, toolCallId: request.payload.tool_call_id as string, request: request.payload };
  }

  /** While it waits, the run holds no worker slot and no queue job, and says `waiting`. */
  async function holdsNothing(ctx: Ctx, runId: string, toolCallId: string): Promise<void> {
    await waitFor(() => ctx.node.worker!.activeCount() === 0, 10_000, 'no worker slot held');
    if (ctx.jobs) await waitFor(async () => Object.values(await ctx.jobs!.getJobCounts(...JOB_STATES)).every((n) => n === 0), 10_000, 'no queue job');
    const run = await ctx.alice.get(`/v1/runs/${runId}`);
    assert.is(run.status, 200);
    checkResult('run', run.body);
    assert.is(run.body.status, 'waiting');
    assert.equal(run.body.pending.map((p: any) => [p.kind, p.tool_call_id, p.tool_name, p.arguments]), [['approval', toolCallId, 'calculator', { expression: '6*7' }]]);
  }

  const runTypes = (client: TestClient, runId: string) =>
    client.frames.filter((f) => f.payload?.run_id === runId && typeof f.payload.seq === 'number' && f.type !== 'message_delta').map((f) => f.type);

  test('approved over the socket: the tool runs and the model goes on; one agent_completed', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { threadId, runId, toolCallId, request } = await ask(ctx, alice);
    assert.equal([request.tool_name, request.arguments, request.thread_id], ['calculator', { expression: '6*7' }, threadId]);
    assert.ok(Date.parse(request.expires_at) > Date.now() + 3_500_000, `expires in an hour: ${request.expires_at}`);
    await holdsNothing(ctx, runId, toolCallId);

    const ack = await alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
    assert.equal([ack.type, ack.payload], ['ack', { run_id: runId, tool_call_id: toolCallId, status: 'approved' }]);
    const done = await alice.completed(runId, 20_000);
    assert.equal([done.payload.status, done.payload.message.content], ['completed', 'The calculator tool says 42.']);
    assert.equal(runTypes(alice, runId), [
      'message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_executing', 'tool_completed', 'agent_completed',
    ]);
    const resolved = alice.frames.find((f) => f.type === 'approval_resolved')!.payload;
    assert.equal([resolved.tool_call_id, resolved.tool_name, resolved.status], [toolCallId, 'calculator', 'approved']);
    const events = alice.events(threadId);
    assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'gap-free');
    const run = await ctx.alice.get(`/v1/runs/${runId}`);
    assert.equal([run.body.status, run.body.pending], ['completed', []]);
  });

  test('denied with a reason: the tool never runs, the model is told why, the run completes', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { runId, toolCallId } = await ask(ctx, alice);
    const ack = await alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: false, reason: 'ask me tomorrow' });
    assert.equal(ack.payload.status, 'denied');
    const done = await alice.completed(runId, 20_000);
    assert.is(done.payload.status, 'completed');
    assert.match(done.payload.message.content, /denied.*Reason: ask me tomorrow/);
    assert.equal(runTypes(alice, runId), ['message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_completed', 'agent_completed']);
    const resolved = alice.frames.find((f) => f.type === 'approval_resolved' && f.payload.run_id === runId)!.payload;
    assert.equal([resolved.status, resolved.reason], ['denied', 'ask me tomorrow']);
    const result = alice.frames.find((f) => f.type === 'tool_completed' && f.payload.run_id === runId)!.payload;
    assert.equal([result.is_error, result.duration_ms], [true, 0]);
  });

  test('a stranger\'s answer, a forged id: not_found, nothing runs; the owner\'s answer then counts', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { runId, toolCallId } = await ask(ctx, alice);
    const bob = await connect(ctx, 'bob');
    const outsider = await connect(ctx, 'alice', 'globex');
    for (const [who, client] of [['bob', bob], ['alice of globex', outsider]] as const) {
      const refused = await client.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
      assert.equal([refused.type, refused.payload.code], ['error', 'not_found'], who);
    }
    const rest = await ctx.bob.post(`/v1/runs/${runId}/approvals`, { tool_call_id: toolCallId, approved: true });
    assert.equal([rest.status, rest.body.code], [404, 'not_found']);
    assert.equal((await ctx.bob.get(`/v1/runs/${runId}`)).status, 404);
    const forged = await alice.request('tool.approve', { run_id: runId, tool_call_id: 'call_forged', approved: true });
    assert.equal(forged.payload.code, 'not_found');
    await holdsNothing(ctx, runId, toolCallId);
    assert.not.ok(alice.frames.some((f) => f.payload?.run_id === runId && ['approval_resolved', 'tool_executing'].includes(f.type)), 'nothing was decided or run');

    const ack = await alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
    assert.equal(ack.payload.status, 'approved');
    assert.is((await alice.completed(runId, 20_000)).payload.status, 'completed');
  });

  test('two answers at once: the first wins, the other is already_answered; a later one over REST is a 409', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const other = await connect(ctx, 'alice');
    const { runId, toolCallId } = await ask(ctx, alice);
    const answers = await Promise.all([
      alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true }),
      other.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: false, reason: 'no' }),
    ]);
    const acks = answers.filter((f) => f.type === 'ack');
    const refused = answers.filter((f) => f.type === 'error');
    assert.equal([acks.length, refused.length], [1, 1], JSON.stringify(answers));
    assert.equal([refused[0]!.payload.code, refused[0]!.payload.retryable], ['already_answered', false]);
    const late = await ctx.alice.post(`/v1/runs/${runId}/approvals`, { tool_call_id: toolCallId, approved: true });
    assert.equal([late.status, late.body.code], [409, 'already_answered']);
    const done = await alice.completed(runId, 20_000);
    assert.is(done.payload.status, 'completed');
    const resolved = alice.frames.filter((f) => f.type === 'approval_resolved' && f.payload.run_id === runId);
    assert.is(resolved.length, 1, 'one decision');
    assert.is(resolved[0]!.payload.status, acks[0]!.payload.status, 'the decision is the acked answer');
    assert.is(alice.frames.filter((f) => f.type === 'agent_completed' && f.payload.run_id === runId).length, 1);
  });

  test('cancel while waiting: cancelled at once with its request; the run queued behind it goes on; a late answer is refused', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { threadId, runId, toolCallId } = await ask(ctx, alice);
    const behind = await alice.request('message.send', { thread_id: threadId, content: 'And then?', on_busy: 'enqueue' });
    const ack = await alice.request('run.cancel', { run_id: runId });
    assert.equal(ack.payload, { run_id: runId, status: 'cancelled' });
    const done = await alice.completed(runId, 10_000);
    assert.is(done.payload.status, 'cancelled');
    const resolved = alice.frames.find((f) => f.type === 'approval_resolved' && f.payload.run_id === runId)!.payload;
    assert.equal([resolved.tool_call_id, resolved.status], [toolCallId, 'cancelled']);
    assert.ok(resolved.seq < done.payload.seq);
    const late = await alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
    assert.equal(late.payload.code, 'already_answered');
    assert.equal((await ctx.alice.get(`/v1/runs/${runId}`)).body.status, 'cancelled');
    assert.is((await alice.completed(behind.payload.run_id, 20_000)).payload.status, 'completed');
    assert.not.ok(alice.frames.some((f) => f.type === 'tool_executing' && f.payload.run_id === runId));
  });

  test('a message that interrupts a waiting run ends it as a cancel does, and runs at once', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { threadId, runId, toolCallId } = await ask(ctx, alice);
    const next = await alice.request('message.send', { thread_id: threadId, content: 'Never mind that', on_busy: 'interrupt' });
    assert.is((await alice.completed(runId, 10_000)).payload.status, 'cancelled');
    const resolved = alice.frames.find((f) => f.type === 'approval_resolved' && f.payload.run_id === runId)!.payload;
    assert.equal([resolved.tool_call_id, resolved.status], [toolCallId, 'cancelled']);
    assert.is((await alice.completed(next.payload.run_id, 20_000)).payload.status, 'completed');
  });

  test('over REST: GET /v1/runs/:id shows the wait, POST /v1/runs/:id/approvals answers it', async (ctx) => {
    const alice = await connect(ctx, 'alice');
    const { threadId, runId, toolCallId } = await ask(ctx, alice);
    await holdsNothing(ctx, runId, toolCallId);
    const invalid = await ctx.alice.post(`/v1/runs/${runId}/approvals`, { tool_call_id: toolCallId, approved: 'yes' });
    assert.equal([invalid.status, invalid.body.code], [400, 'invalid_request']);
    const answer = await ctx.alice.post(`/v1/runs/${runId}/approvals`, { tool_call_id: toolCallId, approved: false, reason: 'over REST' });
    assert.is(answer.status, 200);
    checkResult('toolAnswer', answer.body);
    assert.equal(answer.body, { run_id: runId, tool_call_id: toolCallId, status: 'denied' });
    const events = await ctx.alice.untilCompleted(threadId, runId, 0, 20_000);
    const done = events.find((e) => e.type === 'agent_completed')!;
    assert.match(done.payload.message.content, /Reason: over REST/);
  });

  if (backend === 'redis') {
    test('unanswered past approval_timeout_s: the sweep expires it, the model is told, the run completes', async (ctx) => {
      const alice = await connect(ctx, 'alice');
      const { runId, toolCallId } = await ask(ctx, alice, 'calculate 6*7 please', ctx.hasty);
      // The workers sweep every 5 s (the default): the expiry lands within that of its deadline.
      const done = await alice.completed(runId, 15_000);
      assert.is(done.payload.status, 'completed');
      assert.match(done.payload.message.content, /expired/);
      const resolved = alice.frames.find((f) => f.type === 'approval_resolved' && f.payload.run_id === runId)!.payload;
      assert.equal([resolved.tool_call_id, resolved.status], [toolCallId, 'expired']);
      const late = await alice.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
      assert.equal(late.payload.code, 'already_answered');
      assert.not.ok(alice.frames.some((f) => f.type === 'tool_executing' && f.payload.run_id === runId));
    });
  }

  test.run();
}
