/**
 * A run waiting for an approval outlives the processes around it (Redis + BullMQ): everything of
 * the wait is stored, so a worker killed while the run waits, or a gateway restarted, changes
 * nothing. The answer given meanwhile is resumed by whichever worker is there.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunningNode } from '../app/node.js';
import { signToken } from '../server/auth.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { startNode, type Child } from './support/process.js';
import { RestClient } from './support/rest-client.js';

interface Ctx extends StackCtx {
  workers: Child[];
  guarded: string;
}

const test = suite<Ctx>('approvals across restarts (redis)');

useStack(test, {
  roles: { gateway: true, worker: false },
  setup: async (ctx) => {
    ctx.workers = [];
    const admin = new RestClient(ctx.base, await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 3600, extra: { role: 'admin' } }));
    const res = await admin.post('/v1/agents', { name: 'Guarded', tools: ['calculator'], require_approval: ['calculator'] });
    assert.is(res.status, 201, JSON.stringify(res.body));
    ctx.guarded = res.body.id;
  },
  teardown: async (ctx) => {
    for (const worker of ctx.workers) worker.kill('SIGKILL');
    await Promise.all(ctx.workers.map((worker) => worker.exited()));
  },
});

async function startWorker(ctx: Ctx): Promise<Child> {
  const worker = startNode('worker', { ...ctx.stack.env, LOG_LEVEL: 'info' });
  ctx.workers.push(worker);
  await worker.waitFor(/"msg":"started"/, 30_000);
  return worker;
}

async function ask(ctx: Ctx, url = ctx.url) {
  const client = await connect(ctx, 'alice', 'acme', url);
  const created = await client.request('thread.create', { agent_id: ctx.guarded });
  const sent = await client.request('message.send', { thread_id: created.payload.id, content: 'calculate 6*7 please' });
  const request = await client.next((f) => f.type === 'approval_requested' && f.payload.run_id === sent.payload.run_id, 20_000);
  return { client, threadId: created.payload.id as string, runId: sent.payload.run_id as string, toolCallId: request.payload.tool_call_id as string };
}

test('the worker is killed while the run waits; the answer is given with no worker up; a new worker resumes it', async (ctx) => {
  const first = await startWorker(ctx);
  const { client, runId, toolCallId } = await ask(ctx);
  // The park is the first worker's last word on the run: nothing of it is left in that process.
  await first.waitFor(/run parked before a tool call/, 10_000);
  first.kill('SIGKILL');
  await first.exited();

  const ack = await client.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
  assert.equal(ack.payload.status, 'approved');
  await client.next((f) => f.type === 'approval_resolved' && f.payload.run_id === runId);
  await startWorker(ctx);
  const done = await client.completed(runId, 30_000);
  assert.equal([done.payload.status, done.payload.message.content], ['completed', 'The calculator tool says 42.']);
  assert.not.ok(client.frames.some((f) => f.type === 'agent_thinking' && f.payload.restarted), 'resumed, not taken over');
  assert.is(client.frames.filter((f) => f.type === 'agent_completed' && f.payload.run_id === runId).length, 1);
});

test('the gateway restarts while the run waits; answered through the new gateway, the run completes', async (ctx) => {
  if (ctx.workers.every((worker) => worker.proc.exitCode !== null)) await startWorker(ctx);
  const { client, threadId, runId, toolCallId } = await ask(ctx);
  client.close();
  await ctx.node.close();
  const gateway: RunningNode = await ctx.stack.start({ gateway: true, worker: false });
  const url = ctx.stack.wsUrl(gateway);
  const again = await connect(ctx, 'alice', 'acme', url);
  const followed = await again.request('thread.subscribe', { thread_id: threadId, after_seq: 0 });
  assert.is(followed.type, 'ack');
  await again.next((f) => f.type === 'approval_requested' && f.payload.run_id === runId, 10_000);
  const ack = await again.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved: true });
  assert.equal(ack.payload.status, 'approved');
  const done = await again.completed(runId, 30_000);
  assert.equal([done.payload.status, done.payload.message.content], ['completed', 'The calculator tool says 42.']);
});

test.run();
