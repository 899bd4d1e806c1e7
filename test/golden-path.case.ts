import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import type { Frame, TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';

/**
 * The golden path, run against every backend with the same assertions
 * (golden-path.redis.test.ts, golden-path.embedded.test.ts).
 */
export function goldenPathSuite(backend: Backend): void {
const test = suite<StackCtx>(`golden path (${backend})`);
useStack(test, { backend });

function assertGapless(events: Frame[], from = 1): void {
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + from), 'seq runs without gaps or duplicates');
}

function deltaText(events: Frame[], runId: string): string {
  return events.filter((e) => e.type === 'message_delta' && e.payload.run_id === runId).map((e) => e.payload.delta).join('');
}

test('a turn streams as ordered, gap-free events that equal what Postgres stored', async (ctx) => {
  const client = await connect(ctx, 'alice');
  const ready = client.frames[0]!;
  assert.equal(ready.type, 'session.ready', 'session.ready is the first frame');
  assert.equal(ready.payload.user_id, 'alice');
  assert.equal(ready.payload.workspace_id, 'acme');

  const ack = await client.request('message.send', { content: 'Hello there, tell me something [[words:30]]' });
  assert.equal(ack.type, 'ack');
  const { thread_id, run_id, message_id } = ack.payload;
  const done = await client.completed(run_id);
  const events = client.events(thread_id);

  const types = events.map((e) => e.type);
  assert.equal(types.slice(0, 3), ['message_created', 'agent_started', 'agent_thinking']);
  assert.equal(types[types.length - 1], 'agent_completed');
  assert.ok(types.slice(3, -1).every((t) => t === 'message_delta'), `only deltas in between: ${types}`);
  assert.ok(types.filter((t) => t === 'message_delta').length >= 1);
  assertGapless(events);
  assert.ok(client.frames.indexOf(ack) < client.frames.indexOf(events[0]!), 'ack comes before the first event');

  assert.equal(events[0]!.payload.message.id, message_id);
  assert.equal(events[1]!.payload.agent_id, 'ag_default');
  assert.equal(events[1]!.payload.agent_name, 'Assistant');
  assert.equal(done.payload.status, 'completed');
  assert.equal(deltaText(events, run_id), done.payload.message.content, 'deltas join to the final message');
  assert.ok(done.payload.message.content.startsWith('You said'), done.payload.message.content);
  assert.ok(done.payload.usage.prompt_tokens > 0 && done.payload.usage.completion_tokens > 0);
  const messageIds = new Set(events.filter((e) => e.type === 'message_delta').map((e) => e.payload.message_id));
  assert.equal([...messageIds], [done.payload.message.id], 'every delta carries the assistant message id');

  const stored = await ctx.stack.db.selectFrom('events').selectAll().where('thread_id', '=', thread_id).orderBy('seq').execute();
  assert.equal(
    stored.map((row) => ({ type: row.type, payload: row.payload })),
    events.map((e) => ({ type: e.type, payload: e.payload })),
    'stored events equal received events, field for field',
  );
  const run = await ctx.stack.db.selectFrom('runs').selectAll().where('id', '=', run_id).executeTakeFirstOrThrow();
  assert.equal(run.status, 'completed');
  assert.equal(run.usage, done.payload.usage);
  const messages = await ctx.stack.db.selectFrom('messages').select(['id', 'role', 'content']).where('thread_id', '=', thread_id).orderBy('created_at').execute();
  assert.equal(messages, [
    { id: message_id, role: 'user', content: 'Hello there, tell me something [[words:30]]' },
    { id: done.payload.message.id, role: 'assistant', content: done.payload.message.content },
  ]);
  const thread = await ctx.stack.db.selectFrom('threads').selectAll().where('id', '=', thread_id).executeTakeFirstOrThrow();
  assert.equal(thread.last_seq, events.length);
  assert.equal([thread.user_id, thread.workspace_id], ['alice', 'acme']);
});

test('a tool turn carries one tool_call_id per pair and the tool\'s real result', async (ctx) => {
  const client = await connect(ctx, 'alice');
  const before = Date.now();
  const ack = await client.request('message.send', { content: 'What time is it? Also calculate 6*(3+4)' });
  const { thread_id, run_id } = ack.payload;
  const done = await client.completed(run_id);
  const events = client.events(thread_id);
  assertGapless(events);
  const types = events.map((e) => e.type);
  const executing = events.filter((e) => e.type === 'tool_executing');
  const completed = events.filter((e) => e.type === 'tool_completed');
  assert.equal(executing.length, 2);
  assert.equal(completed.length, 2);
  assert.ok(types.indexOf('agent_thinking') < types.indexOf('tool_executing'));
  assert.ok(types.lastIndexOf('tool_completed') < types.indexOf('message_delta'), `text follows the tools: ${types}`);

  const byName = Object.fromEntries(completed.map((e) => [e.payload.name, e]));
  const clock = byName.get_current_time!;
  const calc = byName.calculator!;
  assert.ok(clock && calc, 'both tools ran');
  for (const result of completed) {
    const start = executing.find((e) => e.payload.tool_call_id === result.payload.tool_call_id);
    assert.ok(start, 'tool_completed pairs with a tool_executing of the same id');
    assert.ok(start!.payload.seq < result.payload.seq);
    assert.equal(result.payload.is_error, false);
    assert.type(result.payload.duration_ms, 'number');
  }
  assert.equal(calc.payload.result, '42');
  assert.equal(executing.find((e) => e.payload.name === 'calculator')!.payload.arguments, { expression: '6*(3+4)' });
  const clockTime = Date.parse(clock.payload.result);
  assert.ok(clockTime >= before - 1000 && clockTime <= Date.now() + 1000, `clock result is now: ${clock.payload.result}`);

  assert.ok(done.payload.message.content.includes('42'), 'the answer uses the calculator result');
  assert.equal(deltaText(events, run_id), done.payload.message.content);

  // The model received the tool results in OpenAI's format on its second call.
  const followUp = ctx.stack.sim.requests.map((r) => r.body).find((body) =>
    body.messages.some((m: any) => m.role === 'tool' && m.content === '42'),
  );
  assert.ok(followUp, 'the simulator received the tool result');
  const assistant = followUp.messages.find((m: any) => m.role === 'assistant' && m.tool_calls);
  assert.equal(assistant.tool_calls.length, 2);
  const stored = await ctx.stack.db.selectFrom('messages').select(['role', 'tool_call_id', 'content']).where('thread_id', '=', thread_id).where('role', '=', 'tool').execute();
  assert.equal(stored.length, 2, 'tool messages are stored');
});

test('the same client_message_id yields the same ack and one run', async (ctx) => {
  const client = await connect(ctx, 'dedupe-user');
  const payload = { content: 'Only once please', client_message_id: 'cm-123' };
  const [a, b] = await Promise.all([client.request('message.send', payload), client.request('message.send', payload)]);
  const c = await client.request('message.send', payload);
  assert.equal([a.type, b.type], ['ack', 'ack'], JSON.stringify([a, b]));
  for (const other of [b, c]) {
    assert.equal(
      [other.payload.thread_id, other.payload.message_id, other.payload.run_id],
      [a.payload.thread_id, a.payload.message_id, a.payload.run_id],
    );
  }
  assert.equal([a, b, c].filter((f) => f.payload.deduplicated).length, 2, 'two of three are marked deduplicated');
  await client.completed(a.payload.run_id);
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('user_id', '=', 'dedupe-user').execute();
  assert.equal(runs.length, 1);
  // A repeat on the now known thread is still the same send.
  const d = await client.request('message.send', { ...payload, thread_id: a.payload.thread_id });
  assert.equal(d.payload.run_id, a.payload.run_id);
});

test('a client that drops after agent_thinking resumes with after_seq: nothing missing, nothing doubled', async (ctx) => {
  const first = await connect(ctx, 'resumer');
  const ack = await first.request('message.send', { content: 'Stream slowly [[words:60]] [[delay:15]]' });
  const { thread_id, run_id } = ack.payload;
  await first.next((f) => f.type === 'agent_thinking' && f.payload.run_id === run_id);
  first.close();
  const seen = first.events(thread_id);
  const lastSeen = seen[seen.length - 1]!.payload.seq;

  const second = await connect(ctx, 'resumer');
  const sub = await second.request('thread.subscribe', { thread_id, after_seq: lastSeen });
  assert.equal(sub.type, 'ack');
  assert.ok(sub.payload.last_seq >= lastSeen);
  const done = await second.completed(run_id);
  const rest = second.events(thread_id);
  assert.ok(rest.length > 0 && rest[0]!.payload.seq === lastSeen + 1, 'resumes right after the last seen seq');
  const all = [...seen.filter((e) => e.payload.seq <= lastSeen), ...rest];
  assertGapless(all);
  assert.equal(deltaText(all, run_id), done.payload.message.content);
  assert.ok(second.frames.indexOf(sub) < second.frames.indexOf(rest[0]!), 'the ack comes before the replay');

  // Resuming again after the turn ended replays exactly the tail.
  const third = await connect(ctx, 'resumer');
  await third.request('thread.subscribe', { thread_id, after_seq: 2 });
  await third.completed(run_id);
  assertGapless(third.events(thread_id), 3);
});

test('resuming while the turn streams, many times over, never gaps or doubles', async (ctx) => {
  const writer = await connect(ctx, 'racer');
  const ack = await writer.request('message.send', { content: 'A long answer [[words:400]] [[delay:6]]' });
  const { thread_id, run_id } = ack.payload;
  // Subscribe fresh sockets at staggered points of the stream, each from a different after_seq.
  const readers: Array<{ client: TestClient; after: number }> = [];
  for (let i = 0; i < 8; i++) {
    await writer.next((f) => f.type === 'message_delta' && f.payload.seq >= 4 + i * 3 && f.payload.run_id === run_id);
    const after = Math.max(0, writer.events(thread_id).length - (i % 3) * 2);
    const client = await connect(ctx, 'racer');
    client.send({ type: 'thread.subscribe', id: 's', payload: { thread_id, after_seq: after } });
    readers.push({ client, after });
  }
  const done = await writer.completed(run_id);
  const total = done.payload.seq;
  for (const { client, after } of readers) {
    await client.completed(run_id);
    const events = client.events(thread_id);
    assertGapless(events, after + 1);
    assert.equal(events[events.length - 1]!.payload.seq, total);
  }
});

test('another user or workspace can neither subscribe to nor write into a thread, and sees none of it', async (ctx) => {
  const owner = await connect(ctx, 'owner', 'acme');
  const colleague = await connect(ctx, 'colleague', 'acme');
  const stranger = await connect(ctx, 'owner', 'other-corp');
  const ack = await owner.request('message.send', { content: 'Private matters' });
  const { thread_id, run_id } = ack.payload;
  for (const intruder of [colleague, stranger]) {
    const sub = await intruder.request('thread.subscribe', { thread_id, after_seq: 0 });
    assert.equal(sub.type, 'error');
    assert.equal(sub.payload.code, 'not_found');
    const send = await intruder.request('message.send', { content: 'let me in', thread_id });
    assert.equal(send.payload.code, 'not_found');
    const cancel = await intruder.request('run.cancel', { run_id });
    assert.equal(cancel.payload.code, 'not_found');
  }
  await owner.completed(run_id);
  await colleague.request('ping', {});
  await stranger.request('ping', {});
  for (const intruder of [colleague, stranger]) {
    assert.not.ok(JSON.stringify(intruder.frames).includes('Private matters'), 'no content leaked');
    assert.equal(intruder.events(thread_id), [], 'no events leaked');
  }
  const messages = await ctx.stack.db.selectFrom('messages').select('content').where('thread_id', '=', thread_id).execute();
  assert.not.ok(messages.some((m) => m.content === 'let me in'));
});

// Cross-process fan-out exists only with Redis; the embedded broker is one process by design.
if (backend === 'redis') test('two gateways and one worker: a socket on gateway B receives the turn sent through gateway A', async (ctx) => {
  const gatewayA = await ctx.stack.start({ gateway: true, worker: false });
  const gatewayB = await ctx.stack.start({ gateway: true, worker: false });
  const onA = await connect(ctx, 'multi', 'acme', ctx.stack.wsUrl(gatewayA));
  const onB = await connect(ctx, 'multi', 'acme', ctx.stack.wsUrl(gatewayB));
  const first = await onA.request('message.send', { content: 'First message' });
  const { thread_id } = first.payload;
  await onA.completed(first.payload.run_id);
  const sub = await onB.request('thread.subscribe', { thread_id, after_seq: onA.events(thread_id).length });
  assert.equal(sub.type, 'ack');
  const second = await onA.request('message.send', { content: 'Second message [[words:20]]', thread_id });
  const done = await onB.completed(second.payload.run_id);
  const onBEvents = onB.events(thread_id);
  assert.equal(onBEvents[0]!.type, 'message_created');
  assert.equal(onBEvents[0]!.payload.message.content, 'Second message [[words:20]]');
  const firstTurnEnd = onA.events(thread_id).find((e) => e.type === 'agent_completed')!.payload.seq;
  assertGapless(onBEvents, firstTurnEnd + 1);
  assert.equal(deltaText(onBEvents, second.payload.run_id), done.payload.message.content);
});

test.run();
}
