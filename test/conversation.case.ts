import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import type { TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { DEFAULT_AGENT_ID } from '../db/agents.repository.js';

interface Ctx extends StackCtx {
  systemPrompt: string;
}

/**
 * A multi-turn conversation through the real stack, asserting on what the model RECEIVED: the
 * prompt the worker rebuilt from Postgres for each later turn (conversation.redis.test.ts,
 * conversation.embedded.test.ts).
 */
export function conversationSuite(backend: Backend): void {
const test = suite<Ctx>(`conversation (${backend})`);
useStack(test, {
  backend,
  setup: async (ctx) => {
    const agent = await ctx.stack.db.selectFrom('agents').select('system_prompt').where('id', '=', DEFAULT_AGENT_ID).executeTakeFirstOrThrow();
    ctx.systemPrompt = agent.system_prompt;
    assert.ok(ctx.systemPrompt.length > 0, 'the default agent has a system prompt');
  },
});

/** Sends one message and waits for its run to complete; returns the ids and the final text. */
async function turn(client: TestClient, content: string, threadId?: string) {
  const ack = await client.request('message.send', { content, ...(threadId ? { thread_id: threadId } : {}) });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const done = await client.completed(ack.payload.run_id);
  assert.equal(done.payload.status, 'completed', JSON.stringify(done.payload));
  return { threadId: ack.payload.thread_id as string, runId: ack.payload.run_id as string, text: done.payload.message.content as string };
}

/** The request bodies' message lists whose last message is the user message `content`. */
function promptsEndingWith(ctx: Ctx, content: string): any[][] {
  return ctx.stack.sim.requests
    .map((r) => r.body.messages as any[])
    .filter((messages) => messages.at(-1)?.role === 'user' && messages.at(-1)?.content === content);
}

test('turn 3 receives turns 1 and 2 whole: the fact, the tool call with its result, both answers', async (ctx) => {
  const client = await connect(ctx, 'zed');
  const say1 = 'My name is Zed and my favourite number is 42.';
  const say2 = 'Please calculate 6*7';
  const say3 = 'What is my name, and does the result match my favourite number?';

  const one = await turn(client, say1);
  assert.ok(one.text.startsWith('You said: My name is Zed and'), one.text);
  const two = await turn(client, say2, one.threadId);
  assert.equal(two.text, 'The calculator tool says 42.');
  const executing = client.events(one.threadId).filter((e) => e.type === 'tool_executing');
  assert.equal(executing.length, 1, 'turn 2 made exactly one tool call');
  const callId = executing[0]!.payload.tool_call_id as string;
  assert.match(callId, /^call_[0-9a-f]{24}$/);
  const three = await turn(client, say3, one.threadId);
  assert.ok(three.text.startsWith('You said: What is my name,'), three.text);

  const received = promptsEndingWith(ctx, say3);
  assert.equal(received.length, 1, 'turn 3 was one model call');
  assert.equal(received[0], [
    { role: 'system', content: ctx.systemPrompt },
    { role: 'user', content: say1 },
    { role: 'assistant', content: one.text },
    { role: 'user', content: say2 },
    { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: 'calculator', arguments: '{"expression":"6*7"}' } }] },
    { role: 'tool', tool_call_id: callId, content: '42' },
    { role: 'assistant', content: two.text },
    { role: 'user', content: say3 },
  ]);

  // Turn 2's own two calls: the question alone after turn 1, then the same plus its tool round.
  const turn2 = ctx.stack.sim.requests.map((r) => r.body.messages as any[]).filter((m) => m.some((x) => x.content === say2) && !m.some((x) => x.content === say3));
  assert.equal(turn2.length, 2);
  assert.equal(turn2[0]!.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.equal(turn2[1]!.slice(0, 4), turn2[0]);
  assert.equal(turn2[1]!.slice(4), received[0]!.slice(4, 6), 'the in-run tool round equals the one rebuilt from the database');
});

test('a send stored while the previous turn streams: each prompt holds whole turns, in run order', async (ctx) => {
  const client = await connect(ctx, 'queuer');
  const say1 = 'Remember the word falcon.';
  const say2 = 'calculate 2+3 [[delay:60]]';
  const say3 = 'And what word was it?';
  const first = await turn(client, say1);
  // Turn 2 streams slowly; once its answer has started, its tool round is stored and its final
  // row is not, so turn 3's user message (queued: enqueue policy) is stored between them.
  const second = await client.request('message.send', { content: say2, thread_id: first.threadId });
  await client.next((f) => f.type === 'message_delta' && f.payload.run_id === second.payload.run_id, 10_000);
  const third = await client.request('message.send', { content: say3, thread_id: first.threadId });
  const secondDone = await client.completed(second.payload.run_id);
  const thirdDone = await client.completed(third.payload.run_id);
  assert.equal([secondDone.payload.status, thirdDone.payload.status], ['completed', 'completed']);

  const stored = await ctx.stack.db.selectFrom('messages').select(['role', 'content']).where('thread_id', '=', first.threadId)
    .orderBy('created_at').orderBy('id').execute();
  assert.equal(stored.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'tool', 'user', 'assistant', 'assistant'], 'turn 3 was stored inside turn 2');
  assert.equal([stored[5]!.content, stored[6]!.content], [say3, secondDone.payload.message.content]);

  for (const messages of ctx.stack.sim.requests.map((r) => r.body.messages as any[])) {
    if (messages.some((m) => m.content === say2) && messages.at(-1)?.content !== say3) {
      assert.not.ok(messages.some((m) => m.content === say3), 'turn 2 never received turn 3');
    }
  }
  const received = promptsEndingWith(ctx, say3);
  assert.equal(received.length, 1);
  const call = received[0]![4]?.tool_calls?.[0];
  assert.equal(received[0], [
    { role: 'system', content: ctx.systemPrompt },
    { role: 'user', content: say1 },
    { role: 'assistant', content: first.text },
    { role: 'user', content: say2 },
    { role: 'assistant', content: null, tool_calls: [{ id: call?.id, type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+3"}' } }] },
    { role: 'tool', tool_call_id: call?.id, content: '5' },
    { role: 'assistant', content: 'The calculator tool says 5.' },
    { role: 'user', content: say3 },
  ]);
  assert.equal(secondDone.payload.message.content, 'The calculator tool says 5.');
});

test.run();
}
