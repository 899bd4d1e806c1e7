/**
 * Runs that wait, through AG-UI over HTTP with @ag-ui/client's HttpAgent: a call that needs the
 * owner's approval ends the AG-UI run with an interrupt outcome; `resume` approves (the tool runs)
 * or denies (the model is told), once; a forged interrupt id and a second answer are refused; a
 * call of the client's own tool ends the run with it pending, and the client's tool message goes
 * on with its result. Every raw event passes EventSchema and each run passes verifyEvents; the
 * agent ends with the stored messages.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { HttpAgent } from '@ag-ui/client';
import type { BaseEvent, Message } from '@ag-ui/core';
import { signToken } from '../server/auth.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { checkEvents, comparable, postRun, storedAsAgui, verified } from './support/agui.js';
import { RestClient } from './support/rest-client.js';
import { waitFor, within } from './support/wait.js';

interface Ctx extends StackCtx {
  /** Agents whose calculator needs the owner's approval: within an hour; within a second. */
  guarded: string;
  hasty: string;
}

const test = suite<Ctx>('AG-UI: approvals and client tools');
useStack(test, {
  setup: async (ctx) => {
    const admin = new RestClient(ctx.base, await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 3600, extra: { role: 'admin' } }));
    const agent = async (name: string, approval_timeout_s: number) => {
      const res = await admin.post('/v1/agents', { name, tools: ['calculator', 'get_current_time'], require_approval: ['calculator'], approval_timeout_s });
      assert.is(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };
    ctx.guarded = await agent('Guarded', 3600);
    ctx.hasty = await agent('Hasty', 1);
  },
});

/** A thread of `sub`'s on the guarded agent, and an HttpAgent on it. */
async function guardedAgent(ctx: Ctx, sub = 'alice', agentId = ctx.guarded) {
  const token = await ctx.stack.token(sub);
  const created = await new RestClient(ctx.base, token).post('/v1/threads', { agent_id: agentId });
  assert.is(created.status, 201);
  const http = new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${token}` }, threadId: created.body.id });
  return { http, token, threadId: created.body.id as string };
}

async function run(http: HttpAgent, parameters: Parameters<HttpAgent['runAgent']>[0] = {}): Promise<BaseEvent[]> {
  const seen: BaseEvent[] = [];
  await within(http.runAgent(parameters, { onEvent: ({ event }) => void seen.push(event) }), 20_000, 'the run');
  return seen;
}

const outcome = (events: BaseEvent[]) => (events.at(-1) as BaseEvent & { outcome?: any }).outcome;

test('approval: the run ends with an interrupt; resume resolved runs the tool and the model goes on', async (ctx) => {
  const { http, token, threadId } = await guardedAgent(ctx);
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 6*7 please' });
  const asked = await run(http);
  const interrupt = outcome(asked).interrupts[0];
  assert.is(outcome(asked).type, 'interrupt');
  const call = asked.find((e) => e.type === 'TOOL_CALL_START') as BaseEvent & { toolCallId: string; toolCallName: string };
  assert.equal([interrupt.reason, interrupt.toolCallId, call.toolCallName], ['tool_approval', call.toolCallId, 'calculator']);
  assert.ok(Date.parse(interrupt.expiresAt) > Date.now() + 3_000_000, 'expires in an hour');
  assert.equal(http.pendingInterrupts.map((i) => i.id), [interrupt.id]);
  // The client will not run on with the interrupt unanswered.
  const refused = await http.runAgent().then(() => undefined, (error: Error) => error);
  assert.match(refused?.message ?? '', /pending interrupt/);

  // The same wait, read raw: every event valid, the run verified.
  const raw = await postRun(ctx.base, token, { threadId, runId: 'join', messages: [] });
  checkEvents(raw);
  await verified(raw);
  assert.equal(outcome(raw as BaseEvent[]), outcome(asked));

  const resumed = await run(http, { resume: [{ interruptId: interrupt.id, status: 'resolved', payload: { reason: 'go ahead' } }] });
  assert.equal(resumed.map((e) => e.type).slice(0, 2), ['RUN_STARTED', 'TOOL_CALL_RESULT']);
  assert.match((resumed[1] as BaseEvent & { content: string }).content, /42/);
  assert.is(outcome(resumed).type, 'success');
  assert.equal(http.pendingInterrupts, []);
  assert.equal(comparable(http.messages), await storedAsAgui(ctx.stack.db, threadId));
  const runId = (asked[0] as BaseEvent & { runId: string }).runId;
  const decision = await ctx.stack.db.selectFrom('tool_waits').select('status').where('run_id', '=', runId).where('tool_call_id', '=', call.toolCallId).executeTakeFirstOrThrow();
  assert.is(decision.status, 'approved');

  // A second answer is refused (409), and HttpAgent surfaces it.
  const late = new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${token}` }, threadId });
  const again = await late.runAgent({ resume: [{ interruptId: interrupt.id, status: 'resolved', payload: { approved: false } }] }).then(() => undefined, (e: Error & { status?: number }) => e);
  assert.is(again?.status, 409);
  assert.match(again!.message, /already_answered/);
  // A `cancelled` entry only takes note of a call decided already: the decision stands, and the
  // answer is the run as it went on.
  const noted = await run(late, { resume: [{ interruptId: interrupt.id, status: 'cancelled' }] });
  assert.equal(noted.map((e) => e.type), resumed.map((e) => e.type));
  assert.is((await ctx.stack.db.selectFrom('tool_waits').select('status').where('run_id', '=', runId).executeTakeFirstOrThrow()).status, 'approved');
});

test('denial: resume cancelled tells the model; the tool does not run; a forged or a stranger\'s id is refused', async (ctx) => {
  const { http, threadId, token } = await guardedAgent(ctx);
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 6*7 please' });
  const asked = await run(http);
  const interrupt = outcome(asked).interrupts[0];

  for (const [who, id] of [['alice', `${interrupt.id}x`], ['alice', 'no-such-interrupt'], ['mallory', interrupt.id]] as const) {
    const other = new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${await ctx.stack.token(who)}` }, threadId: who === 'alice' ? threadId : `t-${randomUUID()}` });
    const refused = await other.runAgent({ resume: [{ interruptId: id, status: 'resolved' }] }).then(() => undefined, (e: Error & { status?: number }) => e);
    assert.is(refused?.status, 404, `${who} ${id}`);
  }
  const runId = (asked[0] as BaseEvent & { runId: string }).runId;
  const pending = await ctx.stack.db.selectFrom('tool_waits').select('status').where('run_id', '=', runId).where('tool_call_id', '=', interrupt.toolCallId).executeTakeFirstOrThrow();
  assert.is(pending.status, 'pending', 'nothing was taken as an approval');

  const denied = await run(http, { resume: [{ interruptId: interrupt.id, status: 'cancelled', payload: { reason: 'not now' } }] });
  const result = denied.find((e) => e.type === 'TOOL_CALL_RESULT') as BaseEvent & { content: string };
  assert.match(result.content, /denied/i);
  assert.match(result.content, /not now/);
  assert.is(outcome(denied).type, 'success');
  assert.equal(comparable(http.messages), await storedAsAgui(ctx.stack.db, threadId));
  const executed = await ctx.stack.db.selectFrom('events').select('type').where('thread_id', '=', threadId).where('type', '=', 'tool_executing').execute();
  assert.is(executed.length, 0, 'the tool never ran');

  // Approve through a resolved answer whose payload says no: denied as well.
  const raw = await postRun(ctx.base, token, { threadId, runId: 'r3', messages: [{ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 1+1 please' }] });
  checkEvents(raw);
  await verified(raw);
  const second = outcome(raw as BaseEvent[]).interrupts[0];
  const answer = await postRun(ctx.base, token, { threadId, runId: 'r4', messages: [], resume: [{ interruptId: second.id, status: 'resolved', payload: { approved: false } }] });
  checkEvents(answer);
  await verified(answer);
  assert.match((answer.find((e) => e.type === 'TOOL_CALL_RESULT') as BaseEvent & { content: string }).content, /denied/i);
});

test('expired, or cancelled while waiting: a `cancelled` resume takes note and the response follows the run to its end', async (ctx) => {
  const { http, token, threadId } = await guardedAgent(ctx, 'alice', ctx.hasty);
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 6*7 please' });
  const interrupt = outcome(await run(http)).interrupts[0];
  // The workers sweep every 5 s (the default): the expiry lands within that of its deadline.
  await waitFor(async () => (await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', interrupt.id.split(':')[0]).executeTakeFirstOrThrow()).status === 'completed', 15_000, 'the run to complete');
  // Approving it now is refused; the client itself would not send it (the interrupt has expired).
  const late = await fetch(`${ctx.base}/v1/agui`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ threadId, runId: 'late', messages: [], resume: [{ interruptId: interrupt.id, status: 'resolved' }] }),
  });
  assert.is(late.status, 409);
  assert.is((await late.json()).code, 'already_answered');
  const after = await run(http, { resume: [{ interruptId: interrupt.id, status: 'cancelled' }] });
  assert.equal(after.map((e) => e.type).slice(0, 2), ['RUN_STARTED', 'TOOL_CALL_RESULT']);
  assert.match((after[1] as BaseEvent & { content: string }).content, /expired/);
  assert.is(outcome(after).type, 'success');
  assert.equal(comparable(http.messages), await storedAsAgui(ctx.stack.db, threadId));

  // Cancelled while it waits: the next input's `cancelled` entry gets the run's end.
  const second = await guardedAgent(ctx);
  second.http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 2*3 please' });
  const waiting = outcome(await run(second.http)).interrupts[0];
  const cancelled = await new RestClient(ctx.base, token).post(`/v1/runs/${waiting.id.split(':')[0]}/cancel`, {});
  assert.is(cancelled.status, 200);
  const ended = await run(second.http, { resume: [{ interruptId: waiting.id, status: 'cancelled' }] });
  checkEvents(ended);
  assert.equal(ended.map((e) => e.type), ['RUN_STARTED', 'RUN_FINISHED']);
  assert.equal(outcome(ended), { type: 'cancelled' });
});

test('a client tool: the run ends with the call pending; the client\'s tool message goes on with its result', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = `t-${randomUUID()}`;
  const http = new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${token}` }, threadId });
  const tools = [{ name: 'pick_color', description: 'Asks the user for a colour.', parameters: { type: 'object', properties: { warm: { type: 'boolean' } } } }];
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: '[[tool:pick_color {"warm":true}]] choose a colour' });
  let pending: string[] = [];
  const seen: BaseEvent[] = [];
  await within(http.runAgent({ tools }, {
    onEvent: ({ event }) => void seen.push(event),
    onRunFinishedEvent: (params) => void (pending = params.outcome === 'success' ? params.pendingToolCallIds : []),
  }), 20_000, 'the run');
  const call = seen.find((e) => e.type === 'TOOL_CALL_START') as BaseEvent & { toolCallId: string; toolCallName: string };
  assert.is(call.toolCallName, 'pick_color');
  assert.equal(pending, [call.toolCallId]);
  assert.equal(outcome(seen), { type: 'success', pendingToolCallIds: [call.toolCallId] });
  assert.not.ok(seen.some((e) => e.type === 'TOOL_CALL_RESULT'));

  http.addMessage({ id: `tool-${randomUUID()}`, role: 'tool', toolCallId: call.toolCallId, content: 'red' });
  const after = await run(http, { tools });
  assert.is(after[0]!.type, 'RUN_STARTED');
  assert.not.ok(after.some((e) => e.type === 'TOOL_CALL_RESULT'), 'the client has its own result');
  assert.is(outcome(after).type, 'success');
  // Read raw, the same turn on another thread: valid events, verified runs.
  const rawThread = `t-${randomUUID()}`;
  const asked = await postRun(ctx.base, token, { threadId: rawThread, runId: 'r1', tools, messages: [{ id: `u-${randomUUID()}`, role: 'user', content: '[[tool:pick_color {"warm":true}]] choose a colour' }] });
  checkEvents(asked);
  await verified(asked);
  const pendingId = outcome(asked as BaseEvent[]).pendingToolCallIds[0];
  const answered = await postRun(ctx.base, token, { threadId: rawThread, runId: 'r2', tools, messages: [{ id: 't1', role: 'tool', toolCallId: pendingId, content: 'blue' }] });
  checkEvents(answered);
  await verified(answered);
  assert.is(outcome(answered as BaseEvent[]).type, 'success');

  const stored = await ctx.stack.db.selectFrom('messages').select(['role', 'content']).where('thread_id', '=', threadId).where('role', '=', 'tool').execute();
  assert.equal(stored, [{ role: 'tool', content: 'red' }]);
  // The same messages as the store, the client's tool message under its own id.
  const mine = comparable(http.messages);
  const theirs = (await storedAsAgui(ctx.stack.db, threadId)).map((m) => (m.role === 'tool' ? { ...m, id: mine.find((x) => x.role === 'tool')!.id } : m));
  assert.equal(mine, theirs as Message[]);
});

test('a client tool unanswered past its deadline: the model is told; the late result is taken as read, the answer is the run as it went on', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = `t-${randomUUID()}`;
  const http = new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${token}` }, threadId });
  const tools = [{ name: 'pick_color', description: 'Asks the user for a colour.', parameters: { type: 'object' } }];
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: '[[tool:pick_color {}]] choose a colour' });
  // A new thread on the agent the request names: its waits expire after a second.
  const asked = await run(http, { tools, forwardedProps: { agent_id: ctx.hasty } });
  const thread = await ctx.stack.db.selectFrom('threads').select('agent_id').where('id', '=', threadId).executeTakeFirstOrThrow();
  assert.is(thread.agent_id, ctx.hasty);
  const callId = outcome(asked).pendingToolCallIds[0] as string;
  const runId = (asked[0] as BaseEvent & { runId: string }).runId;
  // The workers sweep every 5 s (the default): the expiry lands within that of its deadline.
  await waitFor(async () => (await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', runId).executeTakeFirstOrThrow()).status === 'completed', 15_000, 'the run to complete');
  http.addMessage({ id: `tool-${randomUUID()}`, role: 'tool', toolCallId: callId, content: 'too late' });
  const after = await run(http, { tools });
  checkEvents(after);
  assert.equal(after.map((e) => e.type).slice(0, 2), ['RUN_STARTED', 'TOOL_CALL_RESULT']);
  assert.match((after[1] as BaseEvent & { content: string }).content, /in time/);
  assert.is(outcome(after).type, 'success');
  const results = await ctx.stack.db.selectFrom('messages').select('content').where('thread_id', '=', threadId).where('role', '=', 'tool').execute();
  assert.is(results.length, 1, 'the late result is not stored');
  assert.match(results[0]!.content, /in time/);
});

test.run();
