/**
 * AG-UI over HTTP (POST /v1/agui) with @ag-ui/client's own HttpAgent, unchanged, against a real
 * stack: turns with text, a tool call and its result, and an error; every raw event passes
 * EventSchema with no top-level key outside it and each run passes verifyEvents; the agent ends
 * with the stored messages; a bad token and another user's thread are refused in ways HttpAgent
 * surfaces; a resent request does not run twice; and the native frames of the same turn carry the
 * same text, tool calls and results.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { HttpAgent } from '@ag-ui/client';
import type { BaseEvent, Message } from '@ag-ui/core';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { checkEvents, comparable, postRun, storedAsAgui, verified } from './support/agui.js';
import { within } from './support/wait.js';

const test = suite<StackCtx>('AG-UI over HTTP');
useStack(test);

const TOOL_TURN = '[[say:Let me work that out]] calculate 6*7';

function agent(ctx: StackCtx, token: string, threadId = `t-${randomUUID()}`) {
  return new HttpAgent({ url: `${ctx.base}/v1/agui`, headers: { authorization: `Bearer ${token}` }, threadId });
}

/** Runs `content` through an HttpAgent; its events as its subscribers saw them. */
async function turn(http: HttpAgent, content: string): Promise<BaseEvent[]> {
  const seen: BaseEvent[] = [];
  http.addMessage({ id: `u-${randomUUID()}`, role: 'user', content });
  await within(http.runAgent({}, { onEvent: ({ event }) => void seen.push(event) }), 20_000, 'the run');
  return seen;
}

const types = (events: readonly BaseEvent[]) => events.map((e) => e.type);

test('a text turn: valid events, one verified run, and the agent ends with the stored messages', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = `t-${randomUUID()}`;
  const events = await postRun(ctx.base, token, { threadId, runId: 'r1', messages: [{ id: `u-${randomUUID()}`, role: 'user', content: 'hello there [[words:6]]' }] });
  checkEvents(events);
  await verified(events);
  assert.equal(types(events), ['RUN_STARTED', 'TEXT_MESSAGE_START', ...events.slice(2, -2).map(() => 'TEXT_MESSAGE_CONTENT'), 'TEXT_MESSAGE_END', 'RUN_FINISHED']);
  for (const event of events) assert.type((event.metadata as { seq?: number }).seq, 'number');

  const http = agent(ctx, token);
  await turn(http, 'and again [[words:4]]');
  assert.equal(comparable(http.messages), await storedAsAgui(ctx.stack.db, http.threadId));
  assert.equal(http.messages.at(-1)!.role, 'assistant');
});

test('a tool call and its result, then the model\'s text: one assistant message with the call, the result after it', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const http = agent(ctx, token);
  const seen = await turn(http, TOOL_TURN);
  const start = seen.find((e) => e.type === 'TOOL_CALL_START') as BaseEvent & { toolCallName: string; toolCallId: string; parentMessageId: string };
  assert.is(start.toolCallName, 'calculator');
  const args = seen.find((e) => e.type === 'TOOL_CALL_ARGS') as BaseEvent & { delta: string };
  assert.equal(JSON.parse(args.delta), { expression: '6*7' });
  const result = seen.find((e) => e.type === 'TOOL_CALL_RESULT') as BaseEvent & { content: string; toolCallId: string };
  assert.is(result.toolCallId, start.toolCallId);
  assert.match(result.content, /42/);
  assert.equal(comparable(http.messages), await storedAsAgui(ctx.stack.db, http.threadId));
  const [user, answer, tool] = http.messages as [Message, Message & { toolCalls: unknown[]; content: string }, Message];
  assert.is(user.role, 'user');
  assert.is(answer.id, start.parentMessageId);
  assert.is(answer.toolCalls.length, 1);
  assert.match(answer.content, /Let me work that out/);
  assert.is(tool.role, 'tool');

  const raw = await postRun(ctx.base, token, { threadId: `t-${randomUUID()}`, runId: 'r2', messages: [{ id: `u-${randomUUID()}`, role: 'user', content: TOOL_TURN }] });
  checkEvents(raw);
  await verified(raw);
});

test('a failed run is RUN_ERROR with the run\'s error code, and the stream still verifies', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const events = await postRun(ctx.base, token, { threadId: `t-${randomUUID()}`, runId: 'r1', messages: [{ id: `u-${randomUUID()}`, role: 'user', content: 'fail please [[fault:500]]' }] });
  checkEvents(events);
  await verified(events);
  const error = events.at(-1) as BaseEvent & { code: string; message: string };
  assert.is(error.type, 'RUN_ERROR');
  assert.is(error.code, 'llm_error');
  assert.ok(error.message.length > 0);
});

test('a bad token is a 401 that HttpAgent surfaces; another user\'s thread is a 404', async (ctx) => {
  const bad = agent(ctx, 'not-a-jwt');
  bad.addMessage({ id: 'u1', role: 'user', content: 'hi' });
  const refused = await within(bad.runAgent().then(() => undefined, (error: Error & { status?: number }) => error), 10_000, 'the refusal');
  assert.ok(refused, 'runAgent rejected');
  assert.is(refused!.status, 401);
  assert.match(refused!.message, /unauthenticated/);

  const alice = agent(ctx, await ctx.stack.token('alice'));
  await turn(alice, 'mine [[words:3]]');
  const mallory = agent(ctx, await ctx.stack.token('mallory'), alice.threadId);
  mallory.addMessage({ id: 'u-m', role: 'user', content: 'let me in' });
  const denied = await within(mallory.runAgent().then(() => undefined, (error: Error & { status?: number }) => error), 10_000, 'the refusal');
  assert.is(denied?.status, 404);
  const rows = await ctx.stack.db.selectFrom('messages').select('content').where('thread_id', '=', alice.threadId).execute();
  assert.not.ok(rows.some((r) => r.content === 'let me in'), 'nothing stored on her thread');
});

test('a resent request follows the same run: the message is stored once and the answer is the same', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const input = { threadId: `t-${randomUUID()}`, runId: 'r1', messages: [{ id: `u-${randomUUID()}`, role: 'user' as const, content: 'once only [[words:5]]' }] };
  const first = await postRun(ctx.base, token, input);
  const again = await postRun(ctx.base, token, { ...input, runId: 'r2' });
  assert.equal(again, first);
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('thread_id', '=', input.threadId).execute();
  assert.is(runs.length, 1);
});

test('the same turn read natively and through AG-UI: the same text, tool calls and results', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const http = agent(ctx, token);
  // The thread exists once the first turn ran; a native follower then reads the second one.
  await turn(http, 'first [[words:2]]');
  const native = await connect(ctx, 'alice');
  await native.request('thread.subscribe', { thread_id: http.threadId });
  const seen = await turn(http, TOOL_TURN);
  const runId = (seen.find((e) => e.type === 'RUN_STARTED') as BaseEvent & { runId: string }).runId;
  const done = await native.next((f) => f.type === 'agent_completed' && f.payload.run_id === runId);
  const events = native.frames.filter((f) => f.payload?.run_id === done.payload.run_id);
  const text = (list: Array<{ type: string; [k: string]: any }>) => list.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
  assert.is(text(seen as any), events.filter((f) => f.type === 'message_delta').map((f) => f.payload.delta).join(''));
  assert.is(text(seen as any), done.payload.message.content);
  const calls = seen.filter((e) => e.type === 'TOOL_CALL_START').map((e: any) => [e.toolCallId, e.toolCallName]);
  assert.equal(calls, events.filter((f) => f.type === 'tool_executing').map((f) => [f.payload.tool_call_id, f.payload.name]));
  const args = seen.filter((e) => e.type === 'TOOL_CALL_ARGS').map((e: any) => JSON.parse(e.delta));
  assert.equal(args, events.filter((f) => f.type === 'tool_executing').map((f) => f.payload.arguments));
  const results = seen.filter((e) => e.type === 'TOOL_CALL_RESULT').map((e: any) => [e.toolCallId, e.content]);
  assert.equal(results, events.filter((f) => f.type === 'tool_completed').map((f) => [f.payload.tool_call_id, f.payload.result]));
  assert.ok(results.length === 1 && calls.length === 1);
});

test.run();
