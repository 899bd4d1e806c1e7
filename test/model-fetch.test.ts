/**
 * The workers' model client (createLlmClient: the openai SDK over undici's request(), see
 * workers/model-fetch.ts) against the same SDK over the built-in fetch, on the simulator: every
 * way the SDK uses a response gives the same result either way (streamed or not, read by the
 * SDK's iterator or by readChatStream), errors keep their status, headers and body, retries,
 * timeouts and aborts behave the same, and a streamed answer read by readChatStream never becomes
 * a web stream.
 */
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { startLlmSim, type LlmSim } from '../workers/llm-sim.js';
import { createLlmClient } from '../workers/llm-client.js';
import { modelBody } from '../workers/model-fetch.js';
import { readChatStream, type ChatChunk } from '../workers/model-stream.js';
import { waitFor, within } from './support/wait.js';

const DEADLINE_MS = 5000;
const deadline = <T>(p: Promise<T>, what = 'operation'): Promise<T> => within(p, DEADLINE_MS, what);

async function rejects(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await deadline(p, what);
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: expected a rejection`);
}

let sim: LlmSim;
let ours: OpenAI;
let plain: OpenAI;
const user = (content: string): ChatCompletionMessageParam[] => [{ role: 'user', content }];
const ask = (content: string) => ({ model: 'sim-1', messages: user(content) });

test.before(async () => {
  sim = await deadline(startLlmSim({ retryAfterMs: 20 }), 'startLlmSim');
  ours = createLlmClient({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 0, timeoutMs: DEADLINE_MS });
  plain = new OpenAI({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 0, timeout: DEADLINE_MS });
});

test.after(async () => {
  await deadline(sim.close(), 'sim.close');
});

async function readAll(client: OpenAI, content: string): Promise<{ chunks: ChatChunk[]; text: string; nodeBody: boolean }> {
  const response = await deadline(client.chat.completions.create({ ...ask(content), stream: true, stream_options: { include_usage: true } }).asResponse(), 'asResponse');
  const nodeBody = modelBody(response) !== undefined;
  const chunks: ChatChunk[] = [];
  await deadline(readChatStream(response, (chunk) => chunks.push(chunk)), 'readChatStream');
  return { chunks, nodeBody, text: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('') };
}

test('a streamed answer read by readChatStream: the same chunks as over fetch, from a Node stream', async () => {
  const a = await readAll(ours, 'tell me something [[words:30]]');
  const b = await readAll(plain, 'tell me something [[words:30]]');
  assert.ok(a.nodeBody, 'our client hands the body over as a Node stream');
  assert.not.ok(b.nodeBody, 'the built-in fetch has none');
  assert.ok(a.text.split(' ').length >= 30, a.text);
  assert.is(a.text, b.text);
  assert.is(a.chunks.length, b.chunks.length);
  assert.equal(a.chunks.at(-1)!.usage, b.chunks.at(-1)!.usage);
});

test('not streamed, and streamed through the SDK iterator: the same answers as over fetch', async () => {
  const [a, b] = await Promise.all([ours, plain].map((c) => deadline(c.chat.completions.create(ask('hello there')), 'create')));
  assert.is(a!.choices[0]!.message.content, b!.choices[0]!.message.content);
  assert.equal(a!.usage, b!.usage);
  const texts = await Promise.all([ours, plain].map(async (c) => {
    let text = '';
    for await (const chunk of await deadline(c.chat.completions.create({ ...ask('stream it [[words:12]]'), stream: true }), 'stream')) {
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    return text;
  }));
  assert.ok(texts[0]!.length > 0);
  assert.is(texts[0], texts[1]);
  // The raw response of a plain call: headers and a body the SDK can read, as fetch gives them.
  const { data, response } = await deadline(ours.chat.completions.create(ask('hello there')).withResponse(), 'withResponse');
  assert.is(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  assert.is(data.choices[0]!.message.content, a!.choices[0]!.message.content);
});

test('an error status keeps its status, headers and body; a retry after 429 succeeds', async () => {
  for (const client of [ours, plain]) {
    const err = await rejects(client.chat.completions.create(ask('limit me [[fault:429]]')), '429');
    assert.instance(err, APIError);
    const e = err as APIError;
    assert.is(e.status, 429);
    assert.is(e.headers?.get('retry-after-ms'), '20');
    assert.is((e.error as { code?: string })?.code, 'rate_limit_exceeded');
    const five = await rejects(client.chat.completions.create(ask('boom [[fault:500]]')), '500');
    assert.is((five as APIError).status, 500);
  }
  const retrying = createLlmClient({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 1, timeoutMs: DEADLINE_MS });
  const content = 'retry once through undici [[fault:429x1]]';
  const before = sim.requests.length;
  const r = await deadline(retrying.chat.completions.create(ask(content)), 'retried');
  assert.ok(r.choices[0]!.message.content!.startsWith('You said: retry once'));
  assert.is(sim.requests.slice(before).filter((q) => q.body.messages[0].content === content).length, 2, 'one 429, one retry');
});

test('a cut stream and an error chunk mid-stream are thrown by readChatStream', async () => {
  // A body cut off mid-way fails as fetch's does (TypeError('terminated'), the socket's error as
  // its cause), which the turn's outcome reports as a cut model stream (llm_error).
  for (const client of [ours, plain]) {
    const cut = await rejects(readAll(client, 'cut me off [[fault:cut]] [[words:20]]'), 'cut');
    assert.instance(cut, TypeError);
    assert.is((cut as Error).message, 'terminated');
    assert.ok((cut as Error).cause, 'the socket error is its cause');
  }
  const mid = await rejects(readAll(ours, 'half then error [[fault:midstream]] [[words:20]]'), 'midstream');
  assert.instance(mid, APIError);
});

test('an abort before the answer, an abort mid-answer, a timeout and a refused connection', async () => {
  // Before the headers: the SDK's own abort error.
  const ac = new AbortController();
  const before = sim.requests.length;
  const hung = ours.chat.completions.create(ask('hang [[fault:hang]]'), { signal: ac.signal });
  hung.catch(() => {});
  await waitFor(() => sim.requests.length > before, DEADLINE_MS, 'hang request received');
  ac.abort();
  assert.instance(await rejects(hung, 'aborted'), APIUserAbortError);

  // Mid-answer: the body stops with an error, and the chunks before it were delivered.
  const mid = new AbortController();
  const response = await deadline(ours.chat.completions.create({ ...ask('slow [[delay:30]] [[words:40]]'), stream: true }, { signal: mid.signal }).asResponse(), 'slow');
  let chunks = 0;
  const reading = readChatStream(response, () => {
    if (++chunks === 3) mid.abort();
  });
  await rejects(reading, 'aborted mid-answer');
  assert.ok(chunks >= 3 && chunks < 40, `read ${chunks} chunks`);

  // A timeout before the headers.
  const impatient = createLlmClient({ baseURL: sim.baseURL, apiKey: 'test', maxRetries: 0, timeoutMs: 100 });
  assert.instance(await rejects(impatient.chat.completions.create(ask('hang again [[fault:hang]]')), 'timeout'), APIConnectionTimeoutError);

  // Nobody listening.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const nowhere = createLlmClient({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'test', maxRetries: 0, timeoutMs: DEADLINE_MS });
  const refused = await rejects(nowhere.chat.completions.create(ask('anyone?')), 'refused');
  assert.instance(refused, APIConnectionError);
  assert.not.instance(refused, APIConnectionTimeoutError);

  // The simulator still serves.
  assert.is((await deadline(ours.chat.completions.create(ask('still there?')), 'after')).choices[0]!.finish_reason, 'stop');
});

test.run();
