import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI, { APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { startLlmSim, type LlmSim } from '../workers/llm-sim.js';
import { evaluateExpression } from '../workers/tools/calculator.js';
import { waitFor, within } from './support/wait.js';

// uvu has no timeouts: every wait below goes through deadline().
const DEADLINE_MS = 5000;
const deadline = <T>(p: Promise<T>, ms = DEADLINE_MS, what = 'operation'): Promise<T> => within(p, ms, what);

async function rejects(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await deadline(p, DEADLINE_MS, what);
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: expected a rejection`);
}

const TOOLS: ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_current_time', description: 'time', parameters: { type: 'object', properties: {} } } },
  {
    type: 'function',
    function: {
      name: 'calculator',
      description: 'calc',
      parameters: { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] },
    },
  },
];

let sim: LlmSim;
let client: OpenAI;
const user = (content: string): ChatCompletionMessageParam[] => [{ role: 'user', content }];

test.before(async () => {
  sim = await deadline(startLlmSim({ retryAfterMs: 20 }), DEADLINE_MS, 'startLlmSim');
  client = new OpenAI({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 0, timeout: DEADLINE_MS });
});

test.after(async () => {
  await deadline(sim.close(), DEADLINE_MS, 'sim.close');
});

async function complete(messages: ChatCompletionMessageParam[], extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}, c = client) {
  return deadline(c.chat.completions.create({ model: 'sim-1', messages, ...extra }), DEADLINE_MS, 'completion');
}

interface Collected {
  content: string;
  contentChunks: number;
  finish: string | null;
  usage: OpenAI.CompletionUsage | null | undefined;
  calls: Array<{ id: string; name: string; args: string; argChunks: number }>;
}

async function collectStream(messages: ChatCompletionMessageParam[], extra: Record<string, unknown> = {}, into?: Collected): Promise<Collected> {
  const out: Collected = into ?? { content: '', contentChunks: 0, finish: null, usage: undefined, calls: [] };
  const run = async () => {
    const stream = await client.chat.completions.create({
      model: 'sim-1',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      ...extra,
    } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    for await (const chunk of stream) {
      if (chunk.usage) out.usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.content) {
        out.content += choice.delta.content;
        out.contentChunks++;
      }
      for (const tc of choice.delta.tool_calls ?? []) {
        const slot = (out.calls[tc.index] ??= { id: '', name: '', args: '', argChunks: 0 });
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.name = tc.function.name;
        if (tc.function?.arguments) {
          slot.args += tc.function.arguments;
          slot.argChunks++;
        }
      }
      if (choice.finish_reason) out.finish = choice.finish_reason;
    }
    return out;
  };
  return deadline(run(), DEADLINE_MS, 'stream');
}

test('non-streaming text reply: deterministic, 12 words, usage', async () => {
  const a = await complete(user('hello there, simulator'));
  const b = await complete(user('hello there, simulator'));
  const text = a.choices[0]!.message.content!;
  assert.ok(text.startsWith('You said: hello there, simulator'), text);
  assert.is(text.split(' ').length, 12);
  assert.is(b.choices[0]!.message.content, text);
  assert.is(a.choices[0]!.finish_reason, 'stop');
  assert.ok(a.usage && a.usage.prompt_tokens > 0 && a.usage.completion_tokens > 0);
  assert.is(a.usage!.total_tokens, a.usage!.prompt_tokens + a.usage!.completion_tokens);
  const other = await complete(user('something else entirely'));
  assert.is.not(other.choices[0]!.message.content, text);
});

test('streaming text equals non-streaming content; final usage chunk', async () => {
  const msgs = user('stream this please');
  const full = await complete(msgs);
  const s = await collectStream(msgs);
  assert.is(s.content, full.choices[0]!.message.content);
  assert.is(s.contentChunks, 12, 'one chunk per word');
  assert.is(s.finish, 'stop');
  assert.equal(s.usage, full.usage);
});

test('[[words:N]] sets the reply length and is not echoed', async () => {
  const r = await complete(user('short [[words:5]] please'));
  const text = r.choices[0]!.message.content!;
  assert.is(text.split(' ').length, 5);
  assert.not.match(text, '[[');
  const s = await collectStream(user('long one [[words:40]]'));
  assert.is(s.contentChunks, 40);
});

test('replyWords option and delays are honoured', async () => {
  const slow = await deadline(startLlmSim({ replyWords: 4, firstTokenDelayMs: 30, tokenDelayMs: 10 }));
  try {
    const c = new OpenAI({ baseURL: slow.baseURL, apiKey: 'test', maxRetries: 0, timeout: DEADLINE_MS });
    const t0 = Date.now();
    const stream = await deadline(c.chat.completions.create({ model: 'sim-1', messages: user('hi'), stream: true }));
    let text = '';
    await deadline((async () => {
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? '';
    })());
    assert.is(text.split(' ').length, 4);
    assert.ok(Date.now() - t0 >= 30 + 3 * 10 - 5, `elapsed ${Date.now() - t0}ms`);
    const t1 = Date.now();
    await deadline(c.chat.completions.create({ model: 'sim-1', messages: user('hi [[delay:25]] [[words:3]]'), stream: true }).then(async (s) => {
      for await (const _ of s) void _;
    }));
    assert.ok(Date.now() - t1 >= 30 + 2 * 25 - 5, `elapsed ${Date.now() - t1}ms`);
  } finally {
    await deadline(slow.close());
  }
});

test('"what time is it?" -> get_current_time tool call (non-streaming)', async () => {
  const r = await complete(user('what time is it?'), { tools: TOOLS });
  const choice = r.choices[0]!;
  assert.is(choice.finish_reason, 'tool_calls');
  assert.is(choice.message.content, null);
  const call = choice.message.tool_calls![0]!;
  assert.is(call.type, 'function');
  assert.ok(call.type === 'function');
  assert.is(call.function.name, 'get_current_time');
  assert.equal(JSON.parse(call.function.arguments), {});
  assert.match(call.id, /^call_[0-9a-f]+$/);
  const again = await complete(user('what time is it?'), { tools: TOOLS });
  assert.is(again.choices[0]!.message.tool_calls![0]!.id, call.id, 'deterministic id');
  assert.ok(r.usage && r.usage.completion_tokens > 0);
});

test('no tools offered / tool_choice none -> plain text even for a time question', async () => {
  const r = await complete(user('what time is it?'));
  assert.is(r.choices[0]!.finish_reason, 'stop');
  assert.ok(r.choices[0]!.message.content!.startsWith('You said: what time is it?'));
  const n = await complete(user('what time is it?'), { tools: TOOLS, tool_choice: 'none' });
  assert.is(n.choices[0]!.finish_reason, 'stop');
});

test('streaming tool calls: fragments reassemble to valid JSON; parallel calls', async () => {
  const s = await collectStream(user('what time is it? also calculate 2*(3+4)?'), { tools: TOOLS });
  assert.is(s.finish, 'tool_calls');
  assert.is(s.content, '');
  assert.is(s.calls.length, 2);
  const calc = s.calls.find((c) => c.name === 'calculator')!;
  const time = s.calls.find((c) => c.name === 'get_current_time')!;
  assert.equal(JSON.parse(calc.args), { expression: '2*(3+4)' });
  assert.equal(JSON.parse(time.args), {});
  assert.ok(calc.argChunks > 1 && time.argChunks > 1, 'arguments split across chunks');
  assert.ok(calc.id.startsWith('call_') && time.id.startsWith('call_') && calc.id !== time.id);
  assert.ok(s.usage && s.usage.total_tokens > 0);

  const single = await collectStream(user('what time is it? calculate 1+1'), { tools: TOOLS, parallel_tool_calls: false });
  assert.is(single.calls.length, 1);
});

test('"calculate" in a sentence hands the calculator the expression alone, which it evaluates', async () => {
  const cases: Array<[string, string, number]> = [
    ['calculate 6*7 please', '6*7', 42],
    ['Could you calculate (2+3)^2 for me?', '(2+3)^2', 25],
    ['calculate 1.5 + 2.', '1.5 + 2', 3.5],
    ['Calculate -4 * 2, thanks!', '-4 * 2', -8],
  ];
  for (const [content, expression, value] of cases) {
    const s = await collectStream(user(content), { tools: TOOLS });
    assert.is(s.finish, 'tool_calls', content);
    assert.equal(s.calls.map((c) => [c.name, JSON.parse(c.args)]), [['calculator', { expression }]], content);
    assert.is(evaluateExpression(expression), value, content);
  }
  // Nothing to calculate: a plain answer, not a calculator call that can only fail.
  const none = await complete(user('calculate the meaning of life'), { tools: TOOLS });
  assert.is(none.choices[0]!.finish_reason, 'stop');
});

test('[[tool:NAME ARGS]] forces a call to an offered tool', async () => {
  const r = await complete(user('do it [[tool:calculator {"expression":"6*7"}]]'), { tools: TOOLS });
  const call = r.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.is(call.function.name, 'calculator');
  assert.equal(JSON.parse(call.function.arguments), { expression: '6*7' });
  const notOffered = await complete(user('do it [[tool:nope {}]]'), { tools: TOOLS });
  assert.is(notOffered.choices[0]!.finish_reason, 'stop');
});

test('tool result follow-up: answer contains the result verbatim (stream == non-stream)', async () => {
  const first = await complete(user('what time is it?'), { tools: TOOLS });
  const assistant = first.choices[0]!.message;
  const call = assistant.tool_calls![0]!;
  const messages: ChatCompletionMessageParam[] = [
    { role: 'user', content: 'what time is it?' },
    { role: 'assistant', content: null, tool_calls: assistant.tool_calls! },
    { role: 'tool', tool_call_id: call.id, content: '2026-11-23T09:00:01.000Z' },
  ];
  const r = await complete(messages, { tools: TOOLS });
  assert.is(r.choices[0]!.finish_reason, 'stop');
  assert.is(r.choices[0]!.message.content, 'The get_current_time tool says 2026-11-23T09:00:01.000Z.');
  const s = await collectStream(messages, { tools: TOOLS });
  assert.is(s.content, r.choices[0]!.message.content);
});

test('requests are recorded in order with the body the model received', async () => {
  const before = sim.requests.length;
  await complete(user('record me one'));
  await collectStream(user('record me two'), { tools: TOOLS });
  const rec = sim.requests.slice(before);
  assert.is(rec.length, 2);
  assert.equal(rec[0]!.body.messages, [{ role: 'user', content: 'record me one' }]);
  assert.is(rec[0]!.body.model, 'sim-1');
  assert.is(rec[1]!.body.stream, true);
  assert.equal(rec[1]!.body.tools, TOOLS);
  assert.ok(rec[0]!.receivedAt <= rec[1]!.receivedAt && rec[0]!.receivedAt > 0);
});

test('[[fault:429]] -> APIError 429 with retry-after headers', async () => {
  const err = await rejects(complete(user('limit me [[fault:429]]')), '429');
  assert.instance(err, APIError);
  const e = err as APIError;
  assert.is(e.status, 429);
  assert.is(e.headers?.get('retry-after'), '1');
  assert.is(e.headers?.get('retry-after-ms'), '20');
  assert.is((e.error as any)?.code, 'rate_limit_exceeded');
});

test('[[fault:429x1]] with maxRetries 1 succeeds after one retry', async () => {
  const retrying = new OpenAI({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 1, timeout: DEADLINE_MS });
  const content = 'retry once [[fault:429x1]]';
  const before = sim.requests.length;
  const r = await complete(user(content), {}, retrying);
  assert.ok(r.choices[0]!.message.content!.startsWith('You said: retry once'));
  const seen = sim.requests.slice(before).filter((q) => q.body.messages[0].content === content);
  assert.is(seen.length, 2, 'one faulted request + one retry');
  // counter exhausted: the same content now succeeds without retries
  const again = await complete(user(content));
  assert.is(again.choices[0]!.message.content, r.choices[0]!.message.content);
});

test('[[fault:500]] -> APIError 500; [[fault:500x2]] is count-limited', async () => {
  const err = await rejects(complete(user('boom [[fault:500]]')), '500');
  assert.instance(err, APIError);
  assert.is((err as APIError).status, 500);
  for (let i = 0; i < 2; i++) {
    const e = await rejects(complete(user('boom twice [[fault:500x2]]')), `500x2 #${i}`);
    assert.is((e as APIError).status, 500);
  }
  const ok = await complete(user('boom twice [[fault:500x2]]'));
  assert.is(ok.choices[0]!.finish_reason, 'stop');
});

test('[[fault:cut]] -> stream iteration throws after partial content', async () => {
  const got: Collected = { content: '', contentChunks: 0, finish: null, usage: undefined, calls: [] };
  const err = await rejects(collectStream(user('cut me off [[fault:cut]] [[words:20]]'), {}, got), 'cut');
  assert.instance(err, Error);
  assert.not.instance(err, APIUserAbortError);
  assert.ok(got.contentChunks > 0 && got.contentChunks < 20, `got ${got.contentChunks} chunks`);
  assert.is(got.finish, null);
  // non-streaming: a truncated body also fails
  await rejects(complete(user('cut me off [[fault:cut]]')), 'cut non-stream');
});

test('[[fault:hang]] -> request only ends when the client aborts', async () => {
  const ac = new AbortController();
  const before = sim.requests.length;
  const p = client.chat.completions.create({ model: 'sim-1', messages: user('hang [[fault:hang]]') }, { signal: ac.signal });
  p.catch(() => {});
  await waitFor(() => sim.requests.length > before, DEADLINE_MS, 'hang request received');
  const timer = setTimeout(() => ac.abort(), 50);
  const err = await rejects(p, 'hang');
  clearTimeout(timer);
  assert.instance(err, APIUserAbortError);
  // the sim still serves other requests
  const ok = await complete(user('still alive?'));
  assert.is(ok.choices[0]!.finish_reason, 'stop');
});

test('[[fault:badtool]] -> tool call arguments are not JSON', async () => {
  const r = await complete(user('what time is it? [[fault:badtool]]'), { tools: TOOLS });
  const call = r.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.is(call.function.name, 'get_current_time');
  assert.throws(() => JSON.parse(call.function.arguments));
  const s = await collectStream(user('hello [[fault:badtool]]'), { tools: TOOLS });
  assert.is(s.calls[0]!.name, 'get_current_time', 'first offered tool when nothing triggered');
  assert.throws(() => JSON.parse(s.calls[0]!.args));
});

test('[[fault:loop]] -> keeps calling the first tool even after tool results', async () => {
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'go [[fault:loop]]' }];
  const ids = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const r = await complete(messages, { tools: TOOLS });
    assert.is(r.choices[0]!.finish_reason, 'tool_calls');
    const calls = r.choices[0]!.message.tool_calls!;
    const call = calls[0]!;
    assert.ok(call.type === 'function');
    assert.is(call.function.name, 'get_current_time');
    ids.add(call.id);
    messages.push({ role: 'assistant', content: null, tool_calls: calls });
    messages.push({ role: 'tool', tool_call_id: call.id, content: `result ${i}` });
  }
  assert.is(ids.size, 3, 'fresh ids per iteration');
});

test('GET /v1/models, 404, bad JSON -> 400, missing messages -> 400', async () => {
  const models = await deadline(client.models.list());
  assert.equal(models.data.map((m) => m.id), ['sim-1']);
  const nf = await deadline(fetch(`${sim.baseURL}/nope`));
  assert.is(nf.status, 404);
  assert.ok(((await nf.json()) as any).error.message);
  const bad = await deadline(fetch(`${sim.baseURL}/chat/completions`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } }));
  assert.is(bad.status, 400);
  assert.is(((await bad.json()) as any).error.type, 'invalid_request_error');
  const noMsgs = await deadline(fetch(`${sim.baseURL}/chat/completions`, { method: 'POST', body: '{"model":"x"}' }));
  assert.is(noMsgs.status, 400);
  await noMsgs.arrayBuffer();
  const arr = await deadline(fetch(`${sim.baseURL}/chat/completions`, { method: 'POST', body: '[1,2]' }));
  assert.is(arr.status, 400);
  await arr.arrayBuffer();
});

test('content given as an array of text parts', async () => {
  const r = await complete([{ role: 'user', content: [{ type: 'text', text: 'parts work [[words:4]]' }] }]);
  assert.is(r.choices[0]!.message.content, 'You said: parts work.');
});

test('close() is idempotent and does not hang with a hung request open', async () => {
  const s = await deadline(startLlmSim());
  const c = new OpenAI({ baseURL: s.baseURL, apiKey: 'test', maxRetries: 0, timeout: DEADLINE_MS });
  const hung = c.chat.completions.create({ model: 'sim-1', messages: user('[[fault:hang]]'), stream: true });
  hung.catch(() => {});
  await waitFor(() => s.requests.length === 1, DEADLINE_MS, 'hung request received');
  await deadline(s.close(), DEADLINE_MS, 'close #1');
  await deadline(s.close(), DEADLINE_MS, 'close #2');
  const err = await rejects(hung, 'hung request after close');
  assert.instance(err, Error);
});

test.run();
