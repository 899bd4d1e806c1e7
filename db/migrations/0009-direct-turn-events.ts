import { sql, type Kysely } from 'kysely';
import { INSERT_THREAD_EVENTS_FUNCTION } from './0009/insert-thread-events.js';
import { RECORD_TURN_FUNCTION } from './0009/record-turn.js';
import { CLAIM_RUN_FUNCTION } from './0009/claim-run.js';
import { RECORD_TURN_FUNCTION as RECORD_TURN_0004 } from './0004/record-turn.js';
import { CLAIM_RUN_FUNCTION as CLAIM_RUN_0004 } from './0004/runs.js';

/**
 * A turn's first two writes without the batch machinery. record_turn (the user's message) and
 * claim_run (the turn's opening events) each appended their events through append_events, the
 * group-committed log's batch function: a JSON batch parsed into records, every thread locked and
 * checked, fences joined, counts grouped, and the batch rebuilt. Both already hold the thread's
 * row and have just created or claimed the run, so none of that applies: insert_thread_events
 * bumps last_seq once and inserts the rows. Measured with pg_stat_statements in the closed-loop
 * benchmark, the nested append_events cost about 0.42 ms of Postgres time in each of the two
 * functions per turn.
 *
 * `create or replace` drops a function's settings: the generic-plan setting of migration 0006 is
 * set again, and on the new function too.
 */
const GENERIC = 'set plan_cache_mode = force_generic_plan';
const RECORD_TURN_ARGS = 'record_turn(text, text, text, text, text, text, text, text, text, int, text, text, text)';
const CLAIM_RUN_ARGS = 'claim_run(text, boolean, int, double precision, text, boolean)';

export async function up(db: Kysely<any>): Promise<void> {
  await sql.raw(INSERT_THREAD_EVENTS_FUNCTION).execute(db);
  await sql.raw(RECORD_TURN_FUNCTION).execute(db);
  await sql.raw(CLAIM_RUN_FUNCTION).execute(db);
  for (const fn of ['insert_thread_events(text, jsonb, boolean)', RECORD_TURN_ARGS, CLAIM_RUN_ARGS]) {
    await sql.raw(`alter function ${fn} ${GENERIC}`).execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(RECORD_TURN_0004.replace('create function', 'create or replace function')).execute(db);
  await sql.raw(CLAIM_RUN_0004.replace('create function', 'create or replace function')).execute(db);
  for (const fn of [RECORD_TURN_ARGS, CLAIM_RUN_ARGS]) await sql.raw(`alter function ${fn} ${GENERIC}`).execute(db);
  await sql`drop function if exists insert_thread_events(text, jsonb, boolean)`.execute(db);
}
