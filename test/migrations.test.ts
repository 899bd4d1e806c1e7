/**
 * Migrations on both stores: two processes migrating one fresh Postgres database at the same
 * moment, and an embedded PGlite database that survives a close and refuses a second opener.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DataDirInUseError, openStore, type Store } from '../db/connect.js';
import { DEFAULT_AGENT_ID } from '../db/migrations/0001-initial.js';
import { migrateToLatest, MIGRATION_NAMES } from '../db/migrate.js';
import type { Database } from '../db/schema.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { within } from './support/wait.js';

const TABLES = ['agents', 'event_writes', 'events', 'kysely_migration', 'kysely_migration_lock', 'messages', 'runs', 'threads', 'tool_waits'];
// Every migration the code defines must run exactly once, whoever runs it.
const LATEST = MIGRATION_NAMES;

async function publicTables(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public' order by table_name
  `.execute(db);
  return rows.map((r) => r.table_name);
}

async function defaultAgents(db: Kysely<Database>): Promise<number> {
  const rows = await db.selectFrom('agents').select('id').where('id', '=', DEFAULT_AGENT_ID).execute();
  return rows.length;
}

/** The write path's functions and their settings: each plans its statements once (migration 0006). */
async function writePathSettings(db: Kysely<Database>): Promise<Record<string, string[] | null>> {
  const { rows } = await sql<{ proname: string; proconfig: string[] | null }>`
    select proname, proconfig from pg_proc
    where proname in ('append_events', 'record_turn', 'claim_run', 'cancel_queued_run') order by proname
  `.execute(db);
  return Object.fromEntries(rows.map((r) => [r.proname, r.proconfig]));
}
const GENERIC = ['plan_cache_mode=force_generic_plan'];
// append_events probes by key only, however small its tables were when a connection planned it (migration 0012).
const WRITE_PATH = { append_events: [...GENERIC, 'enable_seqscan=off'], cancel_queued_run: GENERIC, claim_run: GENERIC, record_turn: GENERIC };

// ---------------------------------------------------------------------------------------------

interface PgCtx {
  database: TestDatabase;
  stores: Store[];
}

const postgres = suite<PgCtx>('migrations (postgres)');

postgres.before(async (ctx) => {
  ctx.database = await within(createTestDatabase(), 15_000, 'creating the test database');
  ctx.stores = [];
});
postgres.after(async (ctx) => {
  await within(Promise.all(ctx.stores.map((s) => s.close())), 10_000, 'closing the stores');
  await within(ctx.database.drop(), 15_000, 'dropping the test database');
});

postgres('two processes migrating a fresh database at the same moment both succeed, and it is done once', async (ctx) => {
  // Two stores are two pools, as two processes starting together would have.
  const [a, b] = await within(
    Promise.all([openStore({ kind: 'postgres', url: ctx.database.url }), openStore({ kind: 'postgres', url: ctx.database.url })]),
    10_000,
    'opening two stores',
  );
  ctx.stores.push(a, b);
  const [ranA, ranB] = await within(Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]), 30_000, 'two concurrent migrations');
  assert.equal([...ranA, ...ranB], LATEST, `each migration ran exactly once between them (a: ${ranA}, b: ${ranB})`);

  assert.equal(await publicTables(a.db), TABLES);
  assert.equal(await defaultAgents(a.db), 1, 'the default agent exists exactly once');
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(a.db);
  assert.equal(rows.map((r) => r.name), LATEST);
  assert.equal(await writePathSettings(a.db), WRITE_PATH);

  assert.equal(await within(migrateToLatest(a.db), 10_000, 'migrating again'), [], 'running it again is a no-op');
  assert.equal(await within(Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]), 10_000, 'migrating again, concurrently'), [[], []]);
  assert.equal(await defaultAgents(b.db), 1, 'still exactly one default agent');
});

postgres.run();

// ---------------------------------------------------------------------------------------------

interface LiteCtx {
  dataDir: string;
  stores: Store[];
}

/** PGlite is a WASM Postgres: starting it takes a few seconds. */
const OPEN_MS = 60_000;

const pglite = suite<LiteCtx>('migrations (pglite)');

pglite.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-migrations-'));
  ctx.stores = [];
});
pglite.after(async (ctx) => {
  await within(Promise.all(ctx.stores.map((s) => s.close())), 30_000, 'closing the stores');
  await rm(ctx.dataDir, { recursive: true, force: true });
});

async function open(ctx: LiteCtx): Promise<Store> {
  const store = await within(openStore({ kind: 'pglite', dataDir: ctx.dataDir }), OPEN_MS, 'opening PGlite');
  ctx.stores.push(store);
  return store;
}

async function refusedOpen(ctx: LiteCtx): Promise<unknown> {
  return within(
    openStore({ kind: 'pglite', dataDir: ctx.dataDir }).then(
      (store) => {
        ctx.stores.push(store);
        return store;
      },
      (error: unknown) => error,
    ),
    OPEN_MS,
    'a second openStore',
  );
}

pglite('migrate, close, reopen: the second migration is a no-op and the data is still there; a second opener is refused', async (ctx) => {
  const first = await open(ctx);
  assert.equal(await within(migrateToLatest(first.db), OPEN_MS, 'migrating'), LATEST);
  assert.equal(await publicTables(first.db), TABLES);
  assert.equal(await writePathSettings(first.db), WRITE_PATH);
  assert.equal(await defaultAgents(first.db), 1);
  await first.db
    .insertInto('threads')
    .values({ id: 't_survivor', workspace_id: 'acme', user_id: 'alice', agent_id: DEFAULT_AGENT_ID, title: 'written before the close' })
    .execute();

  for (let i = 0; i < 2; i++) {
    // Twice: a refused attempt must not release the lock the first store holds.
    const outcome = await refusedOpen(ctx);
    assert.instance(outcome, DataDirInUseError, `open #${i + 2} on a data dir in use is refused`);
  }
  assert.equal(await defaultAgents(first.db), 1, 'the first store still works after the refusals');

  await within(first.close(), 30_000, 'closing PGlite');
  await within(first.close(), 30_000, 'closing PGlite again');

  const reopened = await open(ctx);
  assert.equal(await within(migrateToLatest(reopened.db), OPEN_MS, 'migrating again'), [], 'already at the latest version');
  const thread = await reopened.db.selectFrom('threads').select(['id', 'title', 'agent_id']).where('id', '=', 't_survivor').executeTakeFirst();
  assert.equal(thread, { id: 't_survivor', title: 'written before the close', agent_id: DEFAULT_AGENT_ID }, 'the row survived the close');
  assert.equal(await defaultAgents(reopened.db), 1, 'still exactly one default agent');
});

pglite.run();
