/**
 * The write path's plans, as Postgres runs them (auto_explain of every statement inside the
 * function, sent back to this connection as notices): append_events locks and checks a batch's
 * threads and fenced runs through their primary keys, one probe per item, where the joins it had
 * until migration 0012 read all of threads and runs on every batch while the tables held a few
 * thousand rows (its generic plan counted on ten items). Postgres only: the embedded database has
 * no auto_explain.
 */
import pg from 'pg';
import { sql } from 'kysely';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore, type Store } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { recordTurn } from '../db/turns.repository.js';
import { claimRun } from '../db/runs.repository.js';
import { eventBatch, type AppendItem } from '../db/events.repository.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { within } from './support/wait.js';

interface Ctx {
  database: TestDatabase;
  store: Store;
}

const test = suite<Ctx>('append_events plans');

test.before(async (ctx) => {
  ctx.database = await within(createTestDatabase(), 15_000, 'creating the test database');
  ctx.store = await openStore({ kind: 'postgres', url: ctx.database.url, poolSize: 2 });
  await migrateToLatest(ctx.store.db);
});

test.after(async (ctx) => {
  await ctx.store?.close();
  await ctx.database?.drop();
});

/** Runs `work` on a connection of its own with every statement's plan sent back as a notice. */
async function plansOf(url: string, work: (client: pg.Client) => Promise<void>): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  const plans: string[] = [];
  client.on('notice', (notice) => plans.push(notice.message ?? ''));
  await client.connect();
  try {
    for (const setting of [
      "load 'auto_explain'",
      'set auto_explain.log_min_duration = 0',
      'set auto_explain.log_nested_statements = on',
      'set auto_explain.log_level = notice',
      'set client_min_messages = notice',
    ]) await client.query(setting);
    await work(client);
  } finally {
    await client.end();
  }
  return plans;
}

test('plans made while the tables were small probe by key after they hold 2,000 threads and runs', async (ctx) => {
  const db = ctx.store.db;
  // No ANALYZE behind the test's back: the plans a connection makes now must serve it as the tables grow.
  await sql`alter table threads set (autovacuum_enabled = false)`.execute(db);
  await sql`alter table runs set (autovacuum_enabled = false)`.execute(db);
  const runs: Array<{ threadId: string; runId: string; attempt: number; messageId: string }> = [];
  for (let i = 0; i < 21; i++) {
    const turn = await recordTurn(db, { workspaceId: 'acme', userId: `user-${i}` }, { content: `Turn ${i}` });
    const claim = await claimRun(db, turn.runId, { job: `job-${i}`, start: true });
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    runs.push({ threadId: turn.threadId, runId: turn.runId, attempt: claim.fence.attempt, messageId: claim.run.assistant_message_id! });
  }
  await sql`analyze threads`.execute(db);
  await sql`analyze runs`.execute(db);
  const delta = (r: (typeof runs)[number]): AppendItem => ({
    threadId: r.threadId,
    fence: { runId: r.runId, attempt: r.attempt },
    draft: { type: 'message_delta', run_id: r.runId, payload: { message_id: r.messageId, delta: ' more' } },
  });
  const last = runs[20]!;
  const done: AppendItem = {
    threadId: last.threadId, fence: { runId: last.runId, attempt: last.attempt },
    message: { id: last.messageId, role: 'assistant', content: 'Done.' }, finish: { status: 'completed' },
    draft: { type: 'agent_completed', run_id: last.runId, payload: { status: 'completed', message: { id: last.messageId, role: 'assistant', content: 'Done.' } } },
  };
  // A stale fence and a gone thread in the same batch are still refused as before.
  const stale: AppendItem = { ...delta(runs[0]!), fence: { runId: runs[0]!.runId, attempt: runs[0]!.attempt + 1 } };
  const gone: AppendItem = { ...delta(runs[1]!), threadId: 't_gone', draft: { ...delta(runs[1]!).draft } };

  const plans = await plansOf(ctx.database.url, async (client) => {
    // Planned now, on 21 threads and runs.
    const first = await client.query('select idx, refused from append_events($1::jsonb, $2, false)', [eventBatch(runs.slice(0, 20).map(delta)), 'w-plan-0']);
    assert.equal(first.rows.map((r) => r.refused), new Array(20).fill(null), 'every delta stored');
    await client.query('select 1 as marker_tables_grow');
    await sql`insert into threads (id, workspace_id, user_id, agent_id, title)
      select 't_filler_' || g, 'acme', 'filler-' || g, 'ag_default', 'A thread of another user' from generate_series(1, 2000) g`.execute(db);
    await sql`insert into runs (id, thread_id, workspace_id, user_id, agent_id, status, attempt, user_message_id)
      select 'run_filler_' || g, 't_filler_' || g, 'acme', 'filler-' || g, 'ag_default', 'running', 1, 'm_filler_' || g from generate_series(1, 2000) g`.execute(db);
    // A tick's deltas (not waiting for locks), then a completion (waiting), as the worker sends them.
    const tick = await client.query('select idx, refused from append_events($1::jsonb, $2, false) order by idx', [eventBatch([...runs.slice(2, 20).map(delta), stale, gone]), 'w-plan-1']);
    assert.equal(tick.rows.map((r) => r.refused), [...new Array(18).fill(null), 'fenced', 'thread_gone']);
    const completed = await client.query('select idx, refused from append_events($1::jsonb, $2, true)', [eventBatch([done]), 'w-plan-2']);
    assert.equal(completed.rows.map((r) => r.refused), [null]);
  });
  const grown = plans.slice(plans.findIndex((plan) => plan.includes('marker_tables_grow')) + 1);
  const inside = grown.filter((plan) => /Query Text:/.test(plan));
  assert.ok(inside.length >= 8, `the statements inside append_events were explained (${inside.length})`);
  // The lock and the check: the two statements that look the batch's items up.
  const lookups = inside.filter((plan) => /for no key update/i.test(plan) || /with checked as/i.test(plan));
  assert.is(lookups.length, 4, 'the lock and the check of both calls');
  for (const plan of inside) assert.not.match(plan, /Seq Scan on (threads|runs)\b/, `no scan of a whole table:\n${plan}`);
  for (const plan of lookups) assert.match(plan, /Index (Only )?Scan using threads_pkey on threads/, `threads probed by primary key:\n${plan}`);
  for (const plan of lookups.filter((p) => /with checked as/i.test(p))) {
    assert.match(plan, /Index Scan using runs_pkey on runs/, `the fence checked through the runs primary key:\n${plan}`);
    assert.not.match(plan, /runs_unfinished_idx/, `not through every running run:\n${plan}`);
  }
  const stored = await sql<{ status: string }>`select status from runs where id = ${last.runId}`.execute(db);
  assert.is(stored.rows[0]!.status, 'completed');
});

test.run();
