/**
 * How turns end when the model or a tool misbehaves: every case ends in success after a retry or
 * a failed completion with a specific code, with exactly one agent_completed and gap-free seq.
 * Faults come from the simulator's directives. Postgres + Redis + BullMQ.
 *
 * Nodes: the suite's node (default tools); a node with extra test tools (one that hangs, one that
 * throws) and a short TOOL_TIMEOUT_MS; a node whose circuit breaker opens after two failures.
 * The extra nodes use their own Redis prefix, so their turns run on their own worker.
 */
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../server/logger.js';
import { startNode, type RunningNode } from '../app/node.js';
import { CircuitBreaker } from '../workers/circuit-breaker.js';
import { builtinTools, ToolRegistry, type Tool } from '../workers/tools/registry.js';
import type { Frame, TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { sleep } from './support/wait.js';

interface Ctx extends StackCtx {
  toolNode: RunningNode;
  toolUrl: string;
  breakerNode: RunningNode;
  breakerUrl: string;
}

const TOOL_TIMEOUT_MS = 300;
const BREAKER_COOLDOWN_MS = 1_000;

/** Test-only tools, given to one node through startNode's `tools` override. */
const hangingTool: Tool = {
  name: 'hanging_tool',
  description: 'Never finishes, and ignores its abort signal.',
  parameters: { type: 'object', properties: {} },
  execute: () => new Promise<string>(() => {}),
};
const throwingTool: Tool = {
  name: 'throwing_tool',
  description: 'Always throws.',
  parameters: { type: 'object', properties: {} },
  execute: async () => {
    throw new Error('kaboom');
  },
};

const test = suite<Ctx>('llm faults');
useStack(test, {
  backend: 'redis',
  sim: { tokenDelayMs: 1, retryAfterMs: 50 },
  env: { LLM_MAX_RETRIES: '1', LLM_TIMEOUT_MS: '500', LLM_BREAKER_FAILURES: '1000' },
  async setup(ctx) {
    const toolEnv = { ...ctx.stack.env, REDIS_PREFIX: `${ctx.stack.prefix}tools:`, TOOL_TIMEOUT_MS: String(TOOL_TIMEOUT_MS) };
    const config = loadConfig(toolEnv);
    ctx.toolNode = await startNode(config, { gateway: true, worker: true }, createLogger(config.logLevel), {
      tools: new ToolRegistry([...builtinTools, hangingTool, throwingTool]),
    });
    ctx.toolUrl = ctx.stack.wsUrl(ctx.toolNode);
    // The gateway only accepts built-in tool names, so the agent offering the test tools is written directly.
    await ctx.stack.db
      .insertInto('agents')
      .values({
        id: 'ag_faulty_tools', workspace_id: 'acme', name: 'Faulty tools', system_prompt: '',
        tools: JSON.stringify(['hanging_tool', 'throwing_tool']), max_tool_iterations: 4, busy_policy: 'enqueue',
      })
      .execute();
    ctx.breakerNode = await ctx.stack.start({}, {
      REDIS_PREFIX: `${ctx.stack.prefix}breaker:`,
      LLM_BREAKER_FAILURES: '2',
      LLM_BREAKER_COOLDOWN_MS: String(BREAKER_COOLDOWN_MS),
    });
    ctx.breakerUrl = ctx.stack.wsUrl(ctx.breakerNode);
  },
  async teardown(ctx) {
    await ctx.toolNode?.close();
  },
});

const unique = () => randomBytes(4).toString('hex');

/** Requests the simulator received for the turn whose user message contains `marker`. */
const simRequestsFor = (ctx: Ctx, marker: string) =>
  ctx.stack.sim.requests.filter((r) => {
    const lastUser = [...(r.body.messages ?? [])].reverse().find((m: any) => m.role === 'user');
    return typeof lastUser?.content === 'string' && lastUser.content.includes(marker);
  });

interface Turn {
  done: Frame;
  events: Frame[];
  deltas: string;
}

/** Sends `content` on a new thread and waits for the run's end; checks the invariants every case shares. */
async function turn(client: TestClient, content: string, threadId?: string): Promise<Turn> {
  const ack = await client.request('message.send', threadId ? { thread_id: threadId, content } : { content });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const { thread_id, run_id } = ack.payload;
  const done = await client.completed(run_id, 20_000);
  // A window in which nothing may arrive: anything that (wrongly) follows the end shows up before counting.
  await sleep(50);
  const events = client.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'seq runs without gaps or duplicates');
  const runEvents = events.filter((e) => e.payload.run_id === run_id);
  assert.is(runEvents.filter((e) => e.type === 'agent_completed').length, 1, 'exactly one agent_completed');
  assert.is(events.at(-1)!.type, 'agent_completed', 'agent_completed is the last event');
  const deltas = runEvents.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
  assert.is(deltas, done.payload.message.content, 'deltas join to the final message');
  return { done, events: runEvents, deltas };
}

function assertFailed(done: Frame, code: string): void {
  assert.is(done.payload.status, 'failed', JSON.stringify(done.payload));
  assert.is(done.payload.error?.code, code, JSON.stringify(done.payload.error));
}

function toolResults(events: Frame[]): Frame[] {
  return events.filter((e) => e.type === 'tool_completed');
}

test('429 once: the SDK retries (honouring retry-after-ms) and the turn completes', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done } = await turn(client, `Rate limited ${marker} [[fault:429x1]] [[words:6]]`);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  assert.ok(done.payload.message.content.startsWith('You said'));
  assert.is(simRequestsFor(ctx, marker).length, 2, 'one 429, one retry');
});

test('500 once: retried, completes', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done } = await turn(client, `Flaky ${marker} [[fault:500x1]] [[words:6]]`);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  assert.is(simRequestsFor(ctx, marker).length, 2);
});

test('500 always: failed llm_error after LLM_MAX_RETRIES', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done } = await turn(client, `Broken ${marker} [[fault:500]]`);
  assertFailed(done, 'llm_error');
  assert.match(done.payload.error.message, 'HTTP 500');
  assert.is(done.payload.message.content, '');
  assert.is(simRequestsFor(ctx, marker).length, 2, 'the first try and one retry');
  const run = await ctx.stack.db.selectFrom('runs').selectAll().where('id', '=', done.payload.run_id).executeTakeFirstOrThrow();
  assert.is(run.status, 'failed');
});

test('stream cut mid-answer: failed llm_error, the partial text kept and equal to the deltas', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done, deltas } = await turn(client, `Cut me ${marker} [[fault:cut]] [[words:20]]`);
  assertFailed(done, 'llm_error');
  assert.ok(done.payload.message.content.length > 0, 'some text arrived before the cut');
  assert.ok(done.payload.message.content.startsWith('You said'), done.payload.message.content);
  assert.is(deltas, done.payload.message.content);
  assert.is(simRequestsFor(ctx, marker).length, 1, 'a cut stream is not retried (text was already shown)');
  const stored = await ctx.stack.db.selectFrom('messages').select('content').where('id', '=', done.payload.message.id).executeTakeFirstOrThrow();
  assert.is(stored.content, done.payload.message.content);
});

test('an error chunk mid-answer (the provider failed while streaming): failed llm_error, the partial text kept and equal to the deltas', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done, deltas } = await turn(client, `Fail me ${marker} [[fault:midstream]] [[words:20]]`);
  assertFailed(done, 'llm_error');
  assert.ok(done.payload.message.content.startsWith('You said'), done.payload.message.content);
  assert.ok(done.payload.message.content.split(' ').length < 20, 'only the text before the error');
  assert.is(deltas, done.payload.message.content);
  assert.is(simRequestsFor(ctx, marker).length, 1, 'not retried (text was already shown)');
});

test('model hangs: failed llm_timeout after LLM_TIMEOUT_MS (500 ms, retried once)', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const started = Date.now();
  const { done } = await turn(client, `Hang ${marker} [[fault:hang]]`);
  assertFailed(done, 'llm_timeout');
  const took = Date.now() - started;
  assert.ok(took >= 1_000 && took < 8_000, `took ${took} ms`);
  assert.is(simRequestsFor(ctx, marker).length, 2);
});

test('malformed tool-call JSON: the tool reports bad arguments to the model and the turn completes', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const { done, events } = await turn(client, `Bad tool ${unique()} [[fault:badtool]]`);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  const [result, more] = toolResults(events);
  assert.ok(result && !more, 'one tool call');
  assert.is(result!.payload.is_error, true);
  assert.match(result!.payload.result, /^Error: Arguments for tool "get_current_time" are not valid JSON/);
  assert.ok(done.payload.message.content.includes('not valid JSON'), 'the model saw the error');
});

test('a tool that throws: is_error, the turn completes', async (ctx) => {
  const client = await connect(ctx, 'faults', 'acme', ctx.toolUrl);
  const thread = await client.request('thread.create', { agent_id: 'ag_faulty_tools' });
  assert.is(thread.type, 'ack', JSON.stringify(thread));
  await client.request('thread.subscribe', { thread_id: thread.payload.id, after_seq: 0 });
  const { done, events } = await turn(client, 'Go [[tool:throwing_tool {}]]', thread.payload.id);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  const [result] = toolResults(events);
  assert.is(result!.payload.is_error, true);
  assert.is(result!.payload.result, 'Error: Tool "throwing_tool" failed: kaboom');
  assert.ok(done.payload.message.content.includes('kaboom'));
});

test('a tool that hangs: is_error after TOOL_TIMEOUT_MS, the turn completes', async (ctx) => {
  const client = await connect(ctx, 'faults', 'acme', ctx.toolUrl);
  const thread = await client.request('thread.create', { agent_id: 'ag_faulty_tools' });
  assert.is(thread.type, 'ack', JSON.stringify(thread));
  await client.request('thread.subscribe', { thread_id: thread.payload.id, after_seq: 0 });
  const { done, events } = await turn(client, 'Wait [[tool:hanging_tool {}]]', thread.payload.id);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload));
  const [result] = toolResults(events);
  assert.is(result!.payload.is_error, true);
  assert.is(result!.payload.result, `Error: the tool did not finish within ${TOOL_TIMEOUT_MS} ms.`);
  assert.ok(result!.payload.duration_ms >= TOOL_TIMEOUT_MS - 5 && result!.payload.duration_ms < TOOL_TIMEOUT_MS + 2_000, String(result!.payload.duration_ms));
  assert.ok(done.payload.message.content.includes('did not finish'), 'the model saw the error');
});

test('tools forever: failed tool_iterations_exceeded', async (ctx) => {
  const client = await connect(ctx, 'faults');
  const marker = unique();
  const { done, events } = await turn(client, `Loop ${marker} [[fault:loop]]`);
  assertFailed(done, 'tool_iterations_exceeded');
  // The default agent allows 8 model calls; the last one's tool calls are not run.
  assert.is(simRequestsFor(ctx, marker).length, 8);
  assert.is(toolResults(events).length, 7);
});

test('circuit breaker: two failing turns open it, the third fails fast without a request, a good turn after the cool-down completes', async (ctx) => {
  const client = await connect(ctx, 'breaker', 'acme', ctx.breakerUrl);
  const marker = unique();
  for (let i = 0; i < 2; i++) {
    const { done } = await turn(client, `Down ${marker} ${i} [[fault:500]]`);
    assertFailed(done, 'llm_error');
  }
  assert.is(simRequestsFor(ctx, marker).length, 4, 'two turns, each tried twice');

  const before = ctx.stack.sim.requests.length;
  const started = Date.now();
  const fast = await turn(client, `Still down ${marker} [[words:3]]`);
  assertFailed(fast.done, 'llm_unavailable');
  assert.ok(Date.now() - started < 1_000, 'failed fast');
  assert.is(ctx.stack.sim.requests.length, before, 'the provider was not called');

  // A threshold to pass: the breaker lets a trial call through only once its cooldown is over.
  await sleep(BREAKER_COOLDOWN_MS + 100);
  const good = await turn(client, `Back ${marker} [[words:4]]`);
  assert.is(good.done.payload.status, 'completed', JSON.stringify(good.done.payload));
  const again = await turn(client, `Closed ${marker} [[words:4]]`);
  assert.is(again.done.payload.status, 'completed', 'the trial success closed the breaker');
});

test.run();

const breaker = suite('circuit breaker');

breaker('closed → open after N consecutive failures; a success in between resets the count', () => {
  let now = 0;
  const b = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 100, now: () => now });
  assert.ok(b.tryAcquire());
  b.failure();
  assert.ok(b.tryAcquire());
  b.success();
  assert.ok(b.tryAcquire());
  b.failure();
  assert.is(b.state, 'closed');
  assert.ok(b.tryAcquire());
  b.failure();
  assert.is(b.state, 'open');
  assert.not.ok(b.tryAcquire());
  now = 60;
  assert.is(b.retryInMs(), 40);
});

breaker('half-open lets one trial through; failure re-opens for a full cool-down, success closes', () => {
  let now = 0;
  const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 100, now: () => now });
  b.tryAcquire();
  b.failure();
  now = 100;
  assert.is(b.state, 'half-open');
  assert.ok(b.tryAcquire(), 'the trial');
  assert.not.ok(b.tryAcquire(), 'only one trial at a time');
  b.failure();
  assert.is(b.state, 'open');
  now = 150;
  assert.not.ok(b.tryAcquire(), 'the cool-down restarted at the trial failure');
  now = 200;
  assert.ok(b.tryAcquire());
  b.release();
  assert.ok(b.tryAcquire(), 'a released trial (cancel) frees the slot');
  b.success();
  assert.is(b.state, 'closed');
  assert.ok(b.tryAcquire() && b.tryAcquire());
});

breaker('a late failure while open does not extend the cool-down', () => {
  let now = 0;
  const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 100, now: () => now });
  b.tryAcquire();
  b.tryAcquire();
  b.failure();
  now = 50;
  b.failure();
  now = 100;
  assert.is(b.state, 'half-open');
});

breaker.run();
