import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import type { Backend } from './support/stack.js';
import { RestClient } from './support/rest-client.js';
import { restApi, wsApi, type ThreadApi, type Transport } from './support/thread-api.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';

/**
 * Thread management (create, list, get, history, update, delete) over both transports with the
 * same expectations: WebSocket frames and the REST mirror (threads.redis.test.ts,
 * threads.embedded.test.ts).
 */
export function threadsSuite(backend: Backend): void {
const test = suite<StackCtx>(`threads (${backend})`);
useStack(test, { backend });

async function api(ctx: StackCtx, transport: Transport, sub: string, workspace = 'acme'): Promise<ThreadApi> {
  if (transport === 'ws') return wsApi(await connect(ctx, sub, workspace));
  return restApi(new RestClient(ctx.base, await ctx.stack.token(sub, workspace)));
}

function ok(outcome: { ok: boolean; body: any }, what: string): any {
  assert.ok(outcome.ok, `${what} failed: ${JSON.stringify(outcome.body)}`);
  return outcome.body;
}

function fails(outcome: { ok: boolean; body: any; code?: string }, code: string, what: string): void {
  assert.not.ok(outcome.ok, `${what} should fail with ${code}, got ${JSON.stringify(outcome.body)}`);
  assert.equal(outcome.code, code, `${what}: ${JSON.stringify(outcome.body)}`);
}

/** Every page of the list, following next_cursor; fails on a loop. */
async function allPages(client: ThreadApi, limit: number, archived?: boolean): Promise<any[][]> {
  const pages: any[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = ok(await client.list({ limit, ...(cursor ? { cursor } : {}), ...(archived !== undefined ? { archived } : {}) }), 'list');
    pages.push(page.threads);
    if (page.next_cursor === null) return pages;
    assert.type(page.next_cursor, 'string');
    cursor = page.next_cursor;
  }
  throw new Error('the cursor never reached the end');
}

for (const transport of ['ws', 'rest'] as const) {
  test(`${transport}: create with and without title and agent; an unknown agent is not_found`, async (ctx) => {
    const client = await api(ctx, transport, `creator-${transport}`);
    const before = Date.now();
    const plain = ok(await client.create(), 'create {}');
    assert.equal(
      { title: plain.title, agent_id: plain.agent_id, last_seq: plain.last_seq, archived: plain.archived },
      { title: null, agent_id: 'ag_default', last_seq: 0, archived: false },
    );
    assert.equal(plain.created_at, plain.updated_at);
    const createdAt = Date.parse(plain.created_at);
    assert.ok(createdAt >= before - 1000 && createdAt <= Date.now() + 1000, `created_at is now: ${plain.created_at}`);

    const named = ok(await client.create({ title: 'Groceries', agent_id: 'ag_default' }), 'create with title and agent');
    assert.equal([named.title, named.agent_id, named.archived, named.last_seq], ['Groceries', 'ag_default', false, 0]);
    assert.is.not(named.id, plain.id);

    fails(await client.create({ agent_id: 'ag_nope' }), 'not_found', 'create with an unknown agent');
    fails(await client.create({ title: '' }), client.invalidCode, 'create with an empty title');

    assert.equal(ok(await client.get(plain.id), 'get'), plain, 'get answers what create answered');
    assert.equal(ok(await client.get(named.id), 'get'), named);
    const listed = ok(await client.list(), 'list');
    assert.equal(listed.threads, [named, plain], 'the failed creates made no thread');
    assert.is(listed.next_cursor, null);
    fails(await client.get('t_does_not_exist'), 'not_found', 'get of a missing thread');
  });

  test(`${transport}: the list is newest first, paged by cursor without overlap; a new message moves a thread to the top`, async (ctx) => {
    const client = await api(ctx, transport, `lister-${transport}`);
    const created: any[] = [];
    for (let i = 0; i < 7; i++) created.push(ok(await client.create({ title: `page ${i}` }), 'create'));
    const newestFirst = created.map((t) => t.id).reverse();

    const pages = await allPages(client, 3);
    assert.equal(pages.map((p) => p.length), [3, 3, 1]);
    const ids = pages.flat().map((t) => t.id);
    assert.equal(new Set(ids).size, ids.length, 'pages do not overlap');
    assert.equal(ids, newestFirst, 'the pages cover every thread, newest first');
    assert.equal(ok(await client.list(), 'list').threads.map((t: any) => t.id), newestFirst, 'one default page holds all 7');

    const oldest = created[0];
    const sent = ok(await client.send(oldest.id, 'Bump this thread up'), 'send');
    assert.equal(sent.thread_id, oldest.id);
    const done = await client.completed(oldest.id, sent.run_id);
    assert.equal(done.status, 'completed');
    const top = ok(await client.list({ limit: 3 }), 'list');
    assert.equal(top.threads[0].id, oldest.id, 'the thread with the new message is first');
    assert.ok(top.threads[0].last_seq >= 3, `last_seq moved: ${top.threads[0].last_seq}`);
    assert.ok(Date.parse(top.threads[0].updated_at) > Date.parse(oldest.updated_at), 'updated_at moved');
    const after = (await allPages(client, 3)).flat().map((t) => t.id);
    assert.equal(after, [oldest.id, ...newestFirst.slice(0, -1)]);

    fails(await client.list({ cursor: 'not-a-cursor' }), 'invalid_request', 'a forged cursor');
    for (const forged of [{ u: '2030', i: 't_x' }, { u: 'yesterday', i: 't_x' }, { u: '2030-01-01T00:00:00Z' }, null]) {
      const cursor = Buffer.from(JSON.stringify(forged)).toString('base64url');
      fails(await client.list({ cursor }), 'invalid_request', `a forged cursor ${JSON.stringify(forged)}`);
    }
  });

  test(`${transport}: history after a turn is the stored log, oldest first, paged backwards with before_seq`, async (ctx) => {
    const client = await api(ctx, transport, `historian-${transport}`);
    const thread = ok(await client.create({ title: 'Story time' }), 'create');
    const sent = ok(await client.send(thread.id, 'Tell me a story [[words:12]]'), 'send');
    const done = await client.completed(thread.id, sent.run_id);
    assert.equal(done.status, 'completed');

    const full = ok(await client.history(thread.id), 'history');
    assert.equal(full.thread_id, thread.id);
    assert.is(full.has_more, false);
    const n = full.events.length;
    assert.ok(n >= 5, `a turn stores several events: ${n}`);
    assert.equal(full.events.map((e: any) => e.payload.seq), Array.from({ length: n }, (_, i) => i + 1), 'oldest first, gapless');
    assert.equal(full.events[0].type, 'message_created');
    assert.equal(full.events[0].payload.message.id, sent.message_id);
    assert.equal(full.events[n - 1].type, 'agent_completed');
    assert.equal(full.events[n - 1].payload, done, 'the stored agent_completed equals the one received');
    const stored = await ctx.stack.db.selectFrom('events').select(['type', 'payload']).where('thread_id', '=', thread.id).orderBy('seq').execute();
    assert.equal(full.events, stored.map((row) => ({ type: row.type, payload: row.payload })));
    assert.equal(ok(await client.get(thread.id), 'get').last_seq, n);

    // Backwards, 4 at a time, from the end.
    const pages: any[] = [];
    let beforeSeq: number | undefined;
    for (let i = 0; i < 20; i++) {
      const page = ok(await client.history(thread.id, { limit: 4, ...(beforeSeq ? { before_seq: beforeSeq } : {}) }), 'history page');
      assert.ok(page.events.length > 0 && page.events.length <= 4);
      const seqs = page.events.map((e: any) => e.payload.seq);
      assert.equal(seqs, [...seqs].sort((a: number, b: number) => a - b), 'each page is oldest first');
      assert.equal(seqs[seqs.length - 1], (beforeSeq ?? n + 1) - 1, 'the page ends right before before_seq');
      pages.push(page);
      if (!page.has_more) break;
      beforeSeq = seqs[0];
    }
    assert.equal(pages.map((p) => p.has_more), [...pages.slice(0, -1).map(() => true), false], 'has_more until the first event');
    assert.equal(pages.length, Math.ceil(n / 4));
    assert.equal(pages.reverse().flatMap((p) => p.events), full.events, 'the pages joined are the whole log');
    const none = ok(await client.history(thread.id, { before_seq: 1 }), 'history before seq 1');
    assert.equal([none.events, none.has_more], [[], false]);
  });

  test(`${transport}: rename, archive and unarchive`, async (ctx) => {
    const client = await api(ctx, transport, `archivist-${transport}`);
    const keep = ok(await client.create({ title: 'Keep' }), 'create');
    const draft = ok(await client.create({ title: 'Draft' }), 'create');

    const renamed = ok(await client.update(draft.id, { title: 'Final' }), 'rename');
    assert.equal({ ...renamed, updated_at: undefined }, { ...draft, title: 'Final', updated_at: undefined });
    assert.equal(ok(await client.get(draft.id), 'get'), renamed);
    fails(await client.update(draft.id, { title: '' }), client.invalidCode, 'rename to an empty title');

    const archived = ok(await client.update(draft.id, { archived: true }), 'archive');
    assert.equal([archived.id, archived.title, archived.archived], [draft.id, 'Final', true]);
    assert.equal(ok(await client.get(draft.id), 'get').archived, true);
    assert.equal(ok(await client.list(), 'list').threads.map((t: any) => t.id), [keep.id], 'archived threads leave the default list');
    assert.equal(ok(await client.list({ archived: false }), 'list').threads.map((t: any) => t.id), [keep.id]);
    const onlyArchived = ok(await client.list({ archived: true }), 'list archived');
    assert.equal(onlyArchived.threads.map((t: any) => [t.id, t.archived]), [[draft.id, true]]);
    assert.equal(ok(await client.update(draft.id, { archived: true }), 'archive again').archived, true, 'archiving twice is harmless');

    const back = ok(await client.update(draft.id, { archived: false }), 'unarchive');
    assert.equal([back.title, back.archived], ['Final', false]);
    assert.equal(new Set(ok(await client.list(), 'list').threads.map((t: any) => t.id)), new Set([keep.id, draft.id]));
    assert.equal(ok(await client.list({ archived: true }), 'list archived').threads, []);

    // Both fields at once, and neither (a no-op that answers the thread as it is).
    const both = ok(await client.update(draft.id, { title: 'Shelved', archived: true }), 'rename and archive');
    assert.equal([both.title, both.archived], ['Shelved', true]);
    const same = ok(await client.update(draft.id, {}), 'an update with no fields');
    assert.equal([same.id, same.title, same.archived], [draft.id, 'Shelved', true]);
    assert.equal(ok(await client.get(keep.id), 'get'), keep, 'the other thread is untouched');
    fails(await client.update('t_does_not_exist', { title: 'x' }), 'not_found', 'update of a missing thread');
  });

  test(`${transport}: delete removes the thread with its messages, runs and events`, async (ctx) => {
    const client = await api(ctx, transport, `deleter-${transport}`);
    const other = ok(await client.create({ title: 'Survivor' }), 'create');
    const thread = ok(await client.create({ title: 'Doomed' }), 'create');
    const sent = ok(await client.send(thread.id, 'Something to forget'), 'send');
    await client.completed(thread.id, sent.run_id);
    const db = ctx.stack.db;
    const count = async (table: 'events' | 'messages' | 'runs') =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).where('thread_id', '=', thread.id).executeTakeFirstOrThrow()).n);
    assert.ok((await count('events')) > 0 && (await count('messages')) > 0 && (await count('runs')) > 0);

    assert.equal(ok(await client.remove(thread.id), 'delete'), { thread_id: thread.id, deleted: true });
    fails(await client.get(thread.id), 'not_found', 'get after delete');
    fails(await client.history(thread.id), 'not_found', 'history after delete');
    fails(await client.update(thread.id, { title: 'Back' }), 'not_found', 'update after delete');
    fails(await client.send(thread.id, 'Anyone there?'), 'not_found', 'send after delete');
    fails(await client.remove(thread.id), 'not_found', 'delete twice');
    assert.equal(ok(await client.list(), 'list').threads.map((t: any) => t.id), [other.id]);
    assert.equal([await count('events'), await count('messages'), await count('runs')], [0, 0, 0], 'nothing of it is left');
    assert.equal(ok(await client.get(other.id), 'get'), other);
  });
}

test('a thread created by a message is titled with its first 80 UTF-16 units, cut between characters (never inside an emoji)', async (ctx) => {
  const client = await connect(ctx, 'titled');
  const a = (n: number) => 'a'.repeat(n);
  const cases: Array<[content: string, title: string]> = [
    [`${a(79)}😀 and more`, a(79)], // a surrogate pair over units 80 and 81
    [`${a(78)}😀 and more`, `${a(78)}😀`], // one that ends at unit 80 is kept
    [`${a(76)}👩\u200d👩\u200d👧 a family`, a(76)], // a ZWJ sequence over unit 80: whole or not at all
    [`${a(73)}🇫🇷🇩🇪 flags`, `${a(73)}🇫🇷`], // the second flag would end at unit 81
    ['short 😀', 'short 😀'],
  ];
  for (const [content, title] of cases) {
    const ack = await client.request('message.send', { content });
    assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
    await client.completed(ack.payload.run_id);
    const thread = await client.request('thread.get', { thread_id: ack.payload.thread_id });
    assert.is(thread.payload.title, title, content);
    assert.not.ok(thread.payload.title.includes('\ufffd'), 'no replacement character');
  }
});

test('a thread reads the same over WebSocket and REST: create, get, list, history, update', async (ctx) => {
  const ws = wsApi(await connect(ctx, 'mirror'));
  const rest = restApi(new RestClient(ctx.base, await ctx.stack.token('mirror')));
  const viaWs = ok(await ws.create({ title: 'Mirror' }), 'ws create');
  assert.equal(ok(await rest.get(viaWs.id), 'rest get'), viaWs);
  const viaRest = ok(await rest.create({ title: 'Reflection' }), 'rest create');
  assert.equal(ok(await ws.get(viaRest.id), 'ws get'), viaRest);

  const sent = ok(await ws.send(viaWs.id, 'Say something [[words:6]]'), 'send');
  await ws.completed(viaWs.id, sent.run_id);
  assert.equal(ok(await rest.history(viaWs.id), 'rest history'), ok(await ws.history(viaWs.id), 'ws history'));
  assert.equal(
    ok(await rest.history(viaWs.id, { before_seq: 4, limit: 2 }), 'rest history page'),
    ok(await ws.history(viaWs.id, { before_seq: 4, limit: 2 }), 'ws history page'),
  );
  assert.equal(ok(await rest.list({ limit: 1 }), 'rest list'), ok(await ws.list({ limit: 1 }), 'ws list'));
  assert.equal(ok(await rest.list(), 'rest list'), ok(await ws.list(), 'ws list'));

  const renamed = ok(await ws.update(viaRest.id, { title: 'Renamed' }), 'ws update');
  assert.equal(ok(await rest.get(viaRest.id), 'rest get'), renamed);
  const archived = ok(await rest.update(viaRest.id, { archived: true }), 'rest update');
  assert.equal(ok(await ws.get(viaRest.id), 'ws get'), archived);
  assert.equal(ok(await rest.list({ archived: true }), 'rest list'), ok(await ws.list({ archived: true }), 'ws list'));
  assert.equal(ok(await rest.remove(viaRest.id), 'rest delete'), { thread_id: viaRest.id, deleted: true });
  assert.equal(ok(await ws.remove(viaWs.id), 'ws delete'), { thread_id: viaWs.id, deleted: true });
});

test('rest: a bad query or body is a 400 invalid_request, not a change', async (ctx) => {
  const rest = new RestClient(ctx.base, await ctx.stack.token('strict'));
  const thread = (await rest.post('/v1/threads', { title: 'Strict' })).body;
  const bad: Array<[string, string, unknown?]> = [
    ['GET', '/v1/threads?limit=0'],
    ['GET', '/v1/threads?limit=101'],
    ['GET', '/v1/threads?limit=two'],
    ['GET', '/v1/threads?archived=yes'],
    ['GET', `/v1/threads/${thread.id}/history?before_seq=0`],
    ['GET', `/v1/threads/${thread.id}/history?limit=501`],
    ['POST', '/v1/threads', { title: 'x', colour: 'red' }],
    ['POST', '/v1/threads', { title: 7 }],
    ['PATCH', `/v1/threads/${thread.id}`, { title: '' }],
    ['PATCH', `/v1/threads/${thread.id}`, { archived: 'yes' }],
    ['PATCH', `/v1/threads/${thread.id}`, { colour: 'red' }],
    ['PATCH', `/v1/threads/${thread.id}`, { thread_id: 't_other', title: 'Moved' }],
  ];
  for (const [method, path, body] of bad) {
    const res = await rest.call(method as 'GET', path, body);
    assert.equal([res.status, res.body.code], [400, 'invalid_request'], `${method} ${path} ${JSON.stringify(body ?? '')}: ${JSON.stringify(res.body)}`);
  }
  const notJson = await fetch(`${ctx.base}/v1/threads/${thread.id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${rest.token}`, 'content-type': 'application/json' },
    body: '{"title": ',
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal([notJson.status, (await notJson.json()).code], [400, 'invalid_request']);
  assert.equal((await rest.get(`/v1/threads/${thread.id}`)).body, thread, 'unchanged');
});

test('threads active within the same millisecond are all listed across pages', async (ctx) => {
  // updated_at has microsecond precision (clock_timestamp() on every event); the cursor must not
  // lose the rows that share the page boundary's millisecond.
  const ws = wsApi(await connect(ctx, 'same-ms'));
  const rest = restApi(new RestClient(ctx.base, await ctx.stack.token('same-ms')));
  const created: string[] = [];
  for (let i = 0; i < 5; i++) created.push(ok(await ws.create({ title: `burst ${i}` }), 'create').id);
  for (const [i, id] of created.entries()) {
    await sql`update threads set updated_at = timestamptz '2030-01-01 00:00:00.123000+00' + ${i + 1} * interval '1 microsecond'
      where id = ${id}`.execute(ctx.stack.db);
  }
  for (const client of [ws, rest]) {
    for (const limit of [1, 2, 3]) {
      const ids = (await allPages(client, limit)).flat().map((t) => t.id);
      assert.equal(ids, [...created].reverse(), `${client.transport}, limit ${limit}: every thread once, newest first`);
    }
  }
});

test.run();
}
