/**
 * DATABASE_READ_URL against a real streaming replica: a throwaway primary and a throwaway hot
 * standby made from it with pg_basebackup (test/support/throwaway-replica.ts), both with
 * pg_stat_statements, so each server says which statements it ran. The nodes connect as their own
 * role (`gateway`), told apart there from this test's own queries. What must hold:
 *  - with the replica current, replay (thread.subscribe from a seq, on a gateway that has not seen
 *    the thread), history (socket and REST), the long-poll, thread lists and search are answered by
 *    the replica: their statements ran there and not on the primary;
 *  - with the replica's replay paused while a turn streams, every client (one on the gateway that
 *    streams the thread, one on a gateway that has not seen it, a long-poll) gets every event
 *    exactly once and in order, and history, lists and search show what the primary holds,
 *    without waiting on the replica (it stays paused throughout: any wait on it would time out);
 *    a gap left by lost publishes is filled from the primary by the fan-out and by a stream reader;
 *  - once replay resumes and the replica has caught up, the reads go back to it;
 *  - a replica that is down costs nothing but its failed reads: the primary answers them all;
 *  - the replica is never sent a write: every statement it ran is one of the client reads or the
 *    routing's position check, the replica pool counted no insert, update or delete, and the
 *    replica's log has no refused write.
 * And DATABASE_READ_URL without DATABASE_URL stops start-up with a line naming the setting.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Kysely } from 'kysely';
import { loadConfig, ConfigError } from '../config/config.js';
import pino from 'pino';
import { openDatabase, openReadReplica } from '../db/connect.js';
import { appendBatch } from '../db/events.repository.js';
import { ReadRouting, type ClientRead } from '../db/read-routing.js';
import { BatchedReads } from '../server/batched-reads.js';
import { readThread } from '../server/streams/thread-reader.js';
import type { ThreadEvent } from '../protocol/frames.js';
import type { Database } from '../db/schema.js';
import type { RunningNode } from '../app/node.js';
import { createStack, type TestStack } from './support/stack.js';
import { TestClient } from './support/client.js';
import { RestClient, restBase } from './support/rest-client.js';
import { assertClientMatchesLog } from './support/run-checks.js';
import { scrape, total } from './support/metrics-scrape.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from './support/throwaway.js';
import { queryOn, startThrowawayReplica, type ThrowawayReplica } from './support/throwaway-replica.js';
import { waitFor, within } from './support/wait.js';

interface Ctx {
  primary: ThrowawayPostgres;
  replica: ThrowawayReplica;
  stack: TestStack;
  /** Gateway and worker. */
  node: RunningNode;
  /** A second gateway (no worker). */
  other: RunningNode;
  /** This test's own handle on the primary (as user postgres, not counted with the nodes' statements). */
  admin: Kysely<Database>;
  clients: TestClient[];
  /** A thread with a finished turn, made while the replica was current. */
  threadId: string;
}

const test = suite<Ctx>('read replica');

// Both servers load pg_stat_statements; autovacuum off keeps the primary's WAL still between turns.
// Commits wait for their WAL, as on a default install (the throwaway default is off, for speed).
const SETTINGS = ['shared_preload_libraries=pg_stat_statements', 'autovacuum=off', 'synchronous_commit=on'];
const READS: ClientRead[] = ['replay', 'history', 'poll', 'list', 'search'];
/** Each client read's statement, as pg_stat_statements shows it. */
const SHAPES: Record<ClientRead, RegExp> = {
  replay: /jsonb_to_recordset/,
  history: /from events where thread_id = t\.id[\s\S]*order by seq desc/,
  poll: /from events where thread_id = t\.id and seq >/,
  list: /to_char\(updated_at/,
  search: /websearch_to_tsquery/,
};
/** Everything else the replica may run: the routing's position check, search's time budget and its transaction. */
const REPLICA_MAY_RUN = [...Object.values(SHAPES), /^select pg_last_wal_replay_lsn\(\)::text as lsn$/, /^select set_config\(\$\d+, \$\d+, \$\d+\)$/, /^(begin|commit)$/i];

const as = (url: string, user: string) => Object.assign(new URL(url), { username: user }).toString();

test.before(async (ctx) => {
  ctx.primary = await startThrowawayPostgres({ settings: SETTINGS });
  ctx.replica = await startThrowawayReplica(ctx.primary, SETTINGS);
  await queryOn(ctx.primary.url, 'create extension pg_stat_statements');
  await queryOn(ctx.primary.url, 'create role gateway login superuser');
  ctx.stack = await createStack({
    // The cluster is this suite's alone: its `postgres` database will do, and goes with it.
    database: { url: as(ctx.primary.url, 'gateway'), name: 'postgres', drop: async () => {} },
    env: { DATABASE_READ_URL: as(ctx.replica.url, 'gateway'), LOG_LEVEL: 'warn' },
    sim: { tokenDelayMs: 1 },
  });
  ctx.node = await ctx.stack.start();
  ctx.other = await ctx.stack.start({ worker: false });
  ctx.admin = openDatabase({ kind: 'postgres', url: ctx.primary.url, poolSize: 2 });
  ctx.clients = [];
  // The schema the node migrated is on the replica too.
  await ctx.replica.caughtUp();
});

test.after.each((ctx) => {
  for (const client of ctx.clients.splice(0)) client.close();
});

test.after(async (ctx) => {
  await ctx.stack?.close();
  await ctx.admin?.destroy();
  await ctx.replica?.close();
  await ctx.primary?.close();
});

async function connect(ctx: Ctx, node: RunningNode, sub = 'ann'): Promise<TestClient> {
  const client = await TestClient.connect(ctx.stack.wsUrl(node), { token: await ctx.stack.token(sub) });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  return client;
}

/** Calls of each client read's statement the nodes made on `url`. */
async function readCalls(url: string): Promise<Record<ClientRead, number>> {
  const rows = await statementsOf(url);
  const calls = Object.fromEntries(READS.map((read) => [read, 0])) as Record<ClientRead, number>;
  for (const row of rows) for (const read of READS) if (SHAPES[read].test(row.query)) calls[read] += row.calls;
  return calls;
}

async function statementsOf(url: string): Promise<Array<{ query: string; calls: number }>> {
  return queryOn(url, `select s.query, s.calls::int as calls from pg_stat_statements s join pg_roles r on r.oid = s.userid where r.rolname = 'gateway'`);
}

function minus(after: Record<ClientRead, number>, before: Record<ClientRead, number>): Record<ClientRead, number> {
  return Object.fromEntries(READS.map((read) => [read, after[read] - before[read]])) as Record<ClientRead, number>;
}

/** The reads each server answered, from the gateway's metrics (both gateways share this process's registry). */
async function answered(ctx: Ctx): Promise<Record<'replica' | 'primary', Record<ClientRead, number>>> {
  const metrics = await scrape(`${restBase(ctx.node)}/metrics`);
  const by = (server: string) => Object.fromEntries(READS.map((read) => [read, total(metrics, 'convo_db_client_reads_total', { read, server })])) as Record<ClientRead, number>;
  return { replica: by('replica'), primary: by('primary') };
}

/** Every client read of `threadId` once, on `node` (which may not have seen the thread), each checked against the log. */
async function readEverything(ctx: Ctx, node: RunningNode, threadId: string, words: { search: string }): Promise<void> {
  const log = await ctx.admin.selectFrom('events').select(['seq', 'type', 'payload']).where('thread_id', '=', threadId).orderBy('seq').execute();
  const stored = log.map((e) => ({ type: e.type, payload: e.payload }));
  const lastSeq = log.length;

  // Replay: a socket that joins from seq 0 gets the whole log, once.
  const reader = await connect(ctx, node);
  const ack = await reader.request('thread.subscribe', { thread_id: threadId, after_seq: 0 });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  await reader.until(() => reader.events(threadId).length >= lastSeq, 10_000, `the replay of ${lastSeq} events`);
  await assertClientMatchesLog(ctx.admin, reader, threadId);

  // History, on the socket and over REST.
  const history = await reader.request('thread.history', { thread_id: threadId, limit: 500 });
  assert.equal(history.payload.events, stored, 'thread.history: the log');
  const rest = new RestClient(restBase(node), await ctx.stack.token('ann'));
  const page = await rest.get(`/v1/threads/${threadId}/history?before_seq=${lastSeq}&limit=3`);
  assert.equal([page.status, page.body.events, page.body.has_more], [200, stored.slice(lastSeq - 4, lastSeq - 1), true], 'GET .../history: a page before a seq');

  // The long-poll, without and with a wait (events are there: it answers at once).
  for (const wait of [0, 5_000]) {
    const polled = await rest.get(`/v1/threads/${threadId}/events?after_seq=1&wait_ms=${wait}`);
    assert.equal([polled.status, polled.body.events, polled.body.last_seq], [200, stored.slice(1), lastSeq], `long-poll, wait_ms=${wait}`);
  }

  // Lists and search.
  const list = await reader.request('thread.list', { limit: 100 });
  assert.ok(list.payload.threads.some((t: any) => t.id === threadId && t.last_seq === lastSeq), 'thread.list has the thread as it is');
  const listed = await rest.get('/v1/threads?limit=100');
  assert.ok(listed.body.threads.some((t: any) => t.id === threadId && t.last_seq === lastSeq), 'GET /v1/threads has the thread as it is');
  const found = await reader.request('search', { q: words.search });
  assert.ok(found.payload.results.some((hit: any) => hit.thread_id === threadId), `search finds "${words.search}"`);
  reader.close();
}

function assertAll(counts: Record<ClientRead, number>, expected: (n: number) => boolean, what: string): void {
  for (const read of READS) assert.ok(expected(counts[read]), `${what}: ${read} ${counts[read]} (${JSON.stringify(counts)})`);
}

/** Nothing but client reads and the position check ever ran on the replica; no write was tried. */
async function assertReplicaOnlyRead(ctx: Ctx): Promise<void> {
  for (const { query } of await statementsOf(ctx.replica.url)) {
    assert.ok(REPLICA_MAY_RUN.some((shape) => shape.test(query.trim())), `the replica ran a statement that is not a client read: ${query}`);
  }
  const kinds = ctx.node.readStatements!.stats.byKind;
  assert.equal([kinds.insert.count, kinds.update.count, kinds.delete.count], [0, 0, 0], 'the replica pool sent no write');
  assert.not.match(ctx.replica.log(), /read-only transaction|cannot execute/, 'the replica refused no write');
}

test('DATABASE_READ_URL without DATABASE_URL is refused, naming the setting', () => {
  try {
    loadConfig({ DATABASE_READ_URL: 'postgres://replica:5432/app' });
    assert.unreachable('loadConfig accepted a replica without a primary');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.is((error as ConfigError).setting, 'DATABASE_READ_URL');
    assert.match((error as Error).message, /DATABASE_URL/);
  }
  assert.is(loadConfig({ DATABASE_URL: 'postgres://primary/app', DATABASE_READ_URL: 'postgres://replica/app' }).databaseReadUrl, 'postgres://replica/app');
});

test('a current replica answers replay, history, the long-poll, lists and search; the primary runs none of them', async (ctx) => {
  const writer = await connect(ctx, ctx.node);
  const sent = await writer.request('message.send', { content: 'Remember the heliotrope [[words:30]]' });
  ctx.threadId = sent.payload.thread_id;
  await writer.completed(sent.payload.run_id);
  await waitFor(async () => (await ctx.admin.selectFrom('runs').select('status').where('id', '=', sent.payload.run_id).executeTakeFirst())?.status === 'completed', 5_000, 'the run to be completed');
  await ctx.replica.caughtUp();

  const [primaryBefore, replicaBefore, answeredBefore] = await Promise.all([readCalls(ctx.primary.url), readCalls(ctx.replica.url), answered(ctx)]);
  await readEverything(ctx, ctx.other, ctx.threadId, { search: 'heliotrope' });
  const [primaryAfter, replicaAfter, answeredAfter] = await Promise.all([readCalls(ctx.primary.url), readCalls(ctx.replica.url), answered(ctx)]);

  assertAll(minus(replicaAfter, replicaBefore), (n) => n > 0, 'statements on the replica');
  assertAll(minus(primaryAfter, primaryBefore), (n) => n === 0, 'the same statements on the primary');
  assertAll(minus(answeredAfter.replica, answeredBefore.replica), (n) => n > 0, 'reads the replica answered');
  assertAll(minus(answeredAfter.primary, answeredBefore.primary), (n) => n === 0, 'reads the primary answered');
  await assertReplicaOnlyRead(ctx);
});

test('replica paused while a turn streams: every client gets every event once; reads fall back to the primary without waiting', async (ctx) => {
  await ctx.replica.pause();
  // Paused, but not behind on this thread yet: its join is still the replica's to answer.
  const answeredAtPause = await answered(ctx);
  const writer = await connect(ctx, ctx.node);
  const joined = await writer.request('thread.subscribe', { thread_id: ctx.threadId, after_seq: 0 });
  const fromSeq = joined.payload.last_seq as number;
  await writer.until(() => writer.events(ctx.threadId).length === fromSeq, 10_000, 'the replay');
  const answeredBefore = await answered(ctx);
  assert.is(answeredBefore.replica.replay - answeredAtPause.replica.replay, 1, 'the replay of a thread the paused replica has in full');
  const primaryBefore = await readCalls(ctx.primary.url);

  const sent = await writer.request('message.send', { thread_id: ctx.threadId, content: 'Tell me about the marmalade [[words:200]] [[delay:5]]' });
  const runId = sent.payload.run_id as string;
  await writer.until(() => writer.events(ctx.threadId).filter((e) => e.payload.run_id === runId).length >= 20, 10_000, 'the turn to stream');

  // Mid-turn: a socket on the gateway that streams the thread, one on a gateway that has not seen
  // it, and a long-poll on that one, each from the start or from before the turn.
  const here = await connect(ctx, ctx.node);
  const there = await connect(ctx, ctx.other);
  for (const client of [here, there]) assert.is((await client.request('thread.subscribe', { thread_id: ctx.threadId, after_seq: 0 })).type, 'ack');
  const poller = new RestClient(restBase(ctx.other), await ctx.stack.token('ann'));
  const polled = await poller.untilCompleted(ctx.threadId, runId, fromSeq);
  for (const client of [writer, here, there]) await client.completed(runId);

  for (const client of [writer, here, there]) await assertClientMatchesLog(ctx.admin, client, ctx.threadId);
  const lastSeq = writer.events(ctx.threadId).length;
  assert.equal(polled.map((e) => e.payload.seq), Array.from({ length: lastSeq - fromSeq }, (_, i) => fromSeq + 1 + i), 'the long-poll: every event of the turn once');

  // The replica has not seen the turn: whatever showed it came from the primary.
  const [{ last_seq: onReplica }] = (await queryOn<{ last_seq: number }>(ctx.replica.url, 'select last_seq from threads where id = $1', [ctx.threadId])) as [{ last_seq: number }];
  assert.is(onReplica, fromSeq, 'the paused replica is behind');
  await readEverything(ctx, ctx.other, ctx.threadId, { search: 'marmalade' });

  // A thread made now is listed and found, though the replica does not have it.
  const fresh = await writer.request('message.send', { content: 'Quokka sightings [[words:5]]' });
  await writer.completed(fresh.payload.run_id);
  const list = await writer.request('thread.list', { limit: 100 });
  assert.ok(list.payload.threads.some((t: any) => t.id === fresh.payload.thread_id), 'thread.list has the new thread');
  const found = await writer.request('search', { q: 'quokka' });
  const hits = found.payload.results.map((hit: any) => hit.thread_id);
  assert.ok(hits.length > 0 && hits.every((id: string) => id === fresh.payload.thread_id), `search finds its messages: ${JSON.stringify(hits)}`);
  assert.equal(await queryOn(ctx.replica.url, 'select 1 from threads where id = $1', [fresh.payload.thread_id]), [], 'not on the replica');

  const [answeredAfter, primaryAfter] = await Promise.all([answered(ctx), readCalls(ctx.primary.url)]);
  assertAll(minus(answeredAfter.primary, answeredBefore.primary), (n) => n > 0, 'reads the primary answered');
  assertAll(minus(answeredAfter.replica, answeredBefore.replica), (n) => n === 0, 'reads the paused replica answered');
  assertAll(minus(primaryAfter, primaryBefore), (n) => n > 0, 'statements on the primary');
  assert.is((await queryOn<{ state: string }>(ctx.replica.url, 'select pg_get_wal_replay_pause_state() as state'))[0]!.state, 'paused', 'still paused: nothing waited for it');
  await assertReplicaOnlyRead(ctx);
});

test('replica paused: a gap left by lost publishes is filled from the primary, by the fan-out and by a stream reader', async (ctx) => {
  const client = await connect(ctx, ctx.node);
  const joined = await client.request('thread.subscribe', { thread_id: ctx.threadId, after_seq: 0 });
  const lastSeq = joined.payload.last_seq as number;
  await client.until(() => client.events(ctx.threadId).length === lastSeq, 10_000, 'the replay');
  // A stream reader (SSE, AG-UI) on its own reads, routed like the gateway's.
  const replica = openReadReplica({ url: as(ctx.replica.url, 'gateway'), poolSize: 2 });
  const reads = new BatchedReads(ctx.node.db, 500, new ReadRouting(ctx.node.db, replica.db));
  const seen: ThreadEvent[] = [];
  const abort = new AbortController();
  const ended = readThread({ broker: ctx.node.broker, reads, log: pino({ level: 'silent' }) }, ctx.threadId, lastSeq, (event) => void seen.push(event), abort.signal);
  try {
    const note = (content: string) => ({ threadId: ctx.threadId, draft: { type: 'message_created' as const, payload: { message: { id: `m_${content}`, role: 'system' as const, content } } } });
    await ctx.node.events.append([note('live')]);
    await waitFor(() => seen.length === 1 && client.events(ctx.threadId).length === lastSeq + 1, 5_000, 'the first live event');
    // The replica has the thread up to the event both have seen, and no further: a gap read that
    // asked it for no more than that would find nothing missing.
    await ctx.replica.resume();
    await ctx.replica.caughtUp();
    await ctx.replica.pause();
    const before = await answered(ctx);
    // Stored without a publish (as when the broker was down), then one that is published.
    await appendBatch(ctx.node.db, [note('unpublished-a'), note('unpublished-b')]);
    await ctx.node.events.append([note('published')]);
    await waitFor(() => seen.length === 4, 5_000, 'the reader: the gap and the live event');
    await client.until(() => client.events(ctx.threadId).length === lastSeq + 4, 5_000, 'the socket: the gap and the live event');
    await assertClientMatchesLog(ctx.admin, client, ctx.threadId);
    assert.equal(seen.map((e) => e.payload.seq), [1, 2, 3, 4].map((i) => lastSeq + i), 'the reader: in order, once each');
    const after = await answered(ctx);
    assert.ok(after.primary.replay - before.primary.replay >= 2, 'the fan-out and the reader read the gap from the primary');
    assert.is(after.replica.replay, before.replica.replay, 'nothing from the paused replica');
  } finally {
    abort.abort();
    await within(ended, 5_000, 'the reader to end');
    await replica.close();
  }
});

test('replay resumed: once the replica has caught up, the reads go back to it', async (ctx) => {
  await ctx.replica.resume();
  await ctx.replica.caughtUp();
  const [primaryBefore, answeredBefore] = await Promise.all([readCalls(ctx.primary.url), answered(ctx)]);
  // A list or search right after the pause may still go by the last check (at most 50 ms old),
  // which found the replica behind: the next check finds it current.
  const reader = await connect(ctx, ctx.other);
  await waitFor(async () => {
    await reader.request('thread.list', { limit: 1 });
    return (await answered(ctx)).replica.list > answeredBefore.replica.list;
  }, 2_000, 'a thread list answered by the replica', 20);
  reader.close();

  const [primaryMid, answeredMid] = await Promise.all([readCalls(ctx.primary.url), answered(ctx)]);
  await readEverything(ctx, ctx.other, ctx.threadId, { search: 'marmalade' });
  const [primaryAfter, answeredAfter] = await Promise.all([readCalls(ctx.primary.url), answered(ctx)]);
  assertAll(minus(answeredAfter.replica, answeredMid.replica), (n) => n > 0, 'reads the replica answered');
  assertAll(minus(answeredAfter.primary, answeredMid.primary), (n) => n === 0, 'reads the primary answered');
  assertAll(minus(primaryAfter, primaryMid), (n) => n === 0, 'client read statements on the primary');
  assert.ok(primaryBefore.list <= primaryMid.list);
  await assertReplicaOnlyRead(ctx);
});

test('the replica down: every read is answered by the primary, at once', async (ctx) => {
  await ctx.replica.stop('immediate');
  const before = await answered(ctx);
  await readEverything(ctx, ctx.other, ctx.threadId, { search: 'marmalade' });
  const after = await answered(ctx);
  assertAll(minus(after.primary, before.primary), (n) => n > 0, 'reads the primary answered');
  assertAll(minus(after.replica, before.replica), (n) => n === 0, 'reads the stopped replica answered');
  assert.ok(ctx.stack.logs.some((line) => line.msg?.includes('the read replica failed')), 'the failure is logged');
});

test.run();
