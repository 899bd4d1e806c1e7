import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import type { TestClient } from './support/client.js';
import { RestClient } from './support/rest-client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';

interface Ctx extends StackCtx {
  /** The searcher's messages, by name. */
  ids: Record<string, { threadId: string; messageId: string }>;
}

/**
 * Full-text search over one's own messages, by the `search` frame and GET /v1/search, against
 * both stores (search.redis.test.ts, search.embedded.test.ts). The simulator's reply echoes only
 * the first five words of a message, so the searched word sits after them: only user messages
 * contain it.
 */
export function searchSuite(backend: Backend): void {
const test = suite<Ctx>(`search (${backend})`);
useStack(test, {
  backend,
  setup: (ctx) => {
    ctx.ids = {};
  },
});

async function turn(client: TestClient, content: string, threadId?: string) {
  const ack = await client.request('message.send', { content, ...(threadId ? { thread_id: threadId } : {}) });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const done = await client.completed(ack.payload.run_id);
  assert.equal(done.payload.status, 'completed');
  return { threadId: ack.payload.thread_id as string, messageId: ack.payload.message_id as string };
}

async function search(client: TestClient, payload: object) {
  const frame = await client.request('search', payload);
  assert.equal(frame.type, 'ack', JSON.stringify(frame));
  return frame.payload.results as any[];
}

const marks = (snippet: string) => snippet.split('<mark>kumquat</mark>').length - 1;

test('turns in two threads, and other users with the same word', async (ctx) => {
  const me = await connect(ctx, 'searcher');
  const created = await me.request('thread.create', { title: 'Fruit notes' });
  const fruit = created.payload.id as string;
  ctx.ids.twice = await turn(me, 'First some context for you: kumquat kumquat marmalade recipe', fruit);
  ctx.ids.later = await turn(me, 'Now something unrelated about trains and timetables', fruit);
  // An untitled thread (message.send without thread_id would title it after the message).
  const untitled = (await me.request('thread.create', {})).payload.id as string;
  ctx.ids.once = await turn(me, 'Another chat begins right here: I like kumquat jam', untitled);
  assert.is.not(ctx.ids.once.threadId, fruit);

  const neighbour = await connect(ctx, 'neighbour');
  ctx.ids.neighbour = await turn(neighbour, 'Their own words are here: kumquat kumquat kumquat neighbourly');
  const elsewhere = await connect(ctx, 'searcher', 'globex');
  ctx.ids.elsewhere = await turn(elsewhere, 'Words from another company entirely: kumquat globex');
});

test('the search frame finds a word from an earlier turn, best match first, with thread and marked snippet', async (ctx) => {
  const me = await connect(ctx, 'searcher');
  const results = await search(me, { q: 'kumquat' });
  assert.equal(
    results.map((r) => [r.thread_id, r.message_id, r.role]),
    [
      [ctx.ids.twice!.threadId, ctx.ids.twice!.messageId, 'user'],
      [ctx.ids.once!.threadId, ctx.ids.once!.messageId, 'user'],
    ],
    'only my two messages with the word, twice before once',
  );
  const [twice, once] = results;
  assert.ok(twice.rank > once.rank, `ranks: ${twice.rank} > ${once.rank}`);
  assert.equal([twice.thread_title, once.thread_title], ['Fruit notes', null]);
  assert.equal([marks(twice.snippet), marks(once.snippet)], [2, 1], `snippets: ${twice.snippet} | ${once.snippet}`);
  assert.ok(twice.snippet.includes('marmalade'), twice.snippet);
  assert.not.ok(twice.snippet.replace(/<\/?mark>/g, '').includes('<'), 'only the word is marked');
  for (const r of results) assert.ok(!Number.isNaN(Date.parse(r.created_at)));

  assert.equal((await search(me, { q: 'kumquat', limit: 1 })).map((r) => r.message_id), [ctx.ids.twice!.messageId]);
  assert.equal((await search(me, { q: 'KUMQUAT' })).map((r) => r.message_id), results.map((r) => r.message_id), 'case does not matter');
  assert.equal((await search(me, { q: 'kumquat -jam' })).map((r) => r.message_id), [ctx.ids.twice!.messageId], 'web-search syntax');
  assert.equal((await search(me, { q: 'timetables' })).map((r) => r.message_id), [ctx.ids.later!.messageId]);
  assert.equal(await search(me, { q: 'zeppelin' }), []);
});

test('GET /v1/search answers what the frame answers', async (ctx) => {
  const me = await connect(ctx, 'searcher');
  const rest = new RestClient(ctx.base, await ctx.stack.token('searcher'));
  for (const [q, limit] of [['kumquat', undefined], ['kumquat', 1], ['kumquat -jam', undefined], ['zeppelin', undefined]] as const) {
    const res = await rest.get(`/v1/search?${new URLSearchParams({ q, ...(limit ? { limit: String(limit) } : {}) })}`);
    assert.equal(res.status, 200);
    assert.equal(res.body, { results: await search(me, { q, ...(limit ? { limit } : {}) }) }, `q=${q} limit=${limit}`);
  }
});

test('never another user\'s messages: each finds only their own', async (ctx) => {
  const expectations = [
    { sub: 'neighbour', workspace: 'acme', own: ctx.ids.neighbour! },
    { sub: 'searcher', workspace: 'globex', own: ctx.ids.elsewhere! },
  ];
  for (const { sub, workspace, own } of expectations) {
    const client = await connect(ctx, sub, workspace);
    const viaWs = await search(client, { q: 'kumquat' });
    assert.equal(viaWs.map((r) => [r.thread_id, r.message_id]), [[own.threadId, own.messageId]], `${sub}@${workspace}`);
    const rest = new RestClient(ctx.base, await ctx.stack.token(sub, workspace));
    assert.equal((await rest.get('/v1/search?q=kumquat')).body.results, viaWs);
    assert.equal(await search(client, { q: 'marmalade' }), [], 'nothing of the searcher\'s');
    assert.equal((await rest.get('/v1/search?q=timetables')).body.results, []);
  }
  // And the neighbour's thrice-repeated word never outranks its way into mine.
  const me = await connect(ctx, 'searcher');
  const mine = await search(me, { q: 'kumquat neighbourly' });
  assert.equal(mine, [], 'both words are needed, and only the neighbour has both');
});

test('a missing, empty or too long q is refused', async (ctx) => {
  const rest = new RestClient(ctx.base, await ctx.stack.token('searcher'));
  for (const query of ['', '?q=', '?q=%20%20%20', '?limit=5', `?q=${'a'.repeat(501)}`, '?q=kumquat&limit=0', '?q=kumquat&limit=51']) {
    const res = await rest.get(`/v1/search${query}`);
    assert.equal([res.status, res.body.code], [400, 'invalid_request'], `GET /v1/search${query.slice(0, 30)}: ${JSON.stringify(res.body)}`);
  }
  const me = await connect(ctx, 'searcher');
  for (const payload of [{}, { q: '' }, { q: 'a'.repeat(501) }, { q: 'kumquat', limit: 0 }]) {
    const frame = await me.request('search', payload);
    assert.equal([frame.type, frame.payload.code], ['error', 'invalid_frame'], JSON.stringify(payload).slice(0, 40));
  }
  const anonymous = await new RestClient(ctx.base).get('/v1/search?q=kumquat');
  assert.equal([anonymous.status, anonymous.body.code], [401, 'unauthenticated']);
});

test('a deleted thread\'s messages are no longer found', async (ctx) => {
  const me = await connect(ctx, 'searcher');
  const deleted = await me.request('thread.delete', { thread_id: ctx.ids.once!.threadId });
  assert.equal(deleted.type, 'ack');
  assert.equal((await search(me, { q: 'kumquat' })).map((r) => r.message_id), [ctx.ids.twice!.messageId]);
});

test('snippets are safe to render as HTML: only the match is markup', async (ctx) => {
  const me = await connect(ctx, 'escaper');
  await turn(me, 'Words before the payload <script>alert("x")</script> & <b>zanzibar</b> after');
  const [hit] = await search(me, { q: 'zanzibar' });
  assert.ok(hit, 'found');
  assert.match(hit.snippet, /<mark>zanzibar<\/mark>/);
  // ts_headline drops tag-like tokens; whatever text remains is escaped.
  assert.ok(hit.snippet.includes('&quot;x&quot;') && hit.snippet.includes('&amp;'), hit.snippet);
  assert.not.ok(hit.snippet.replace(/<\/?mark>/g, '').includes('<'), `no raw markup: ${hit.snippet}`);
});

test.run();
}
