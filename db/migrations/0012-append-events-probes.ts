import { sql, type Kysely } from 'kysely';
import { APPEND_EVENTS_FUNCTION } from './0012/append-events.js';
import { APPEND_EVENTS_FUNCTION as APPEND_EVENTS_0007 } from './0007/append-events.js';

/**
 * append_events finds the batch's threads and runs by primary key whatever the tables' size and
 * whenever its plans were made (./0012/append-events.ts says why and what it measured). Same
 * arguments, same result: `create or replace`, which drops the function's settings, so the
 * generic-plan setting of migration 0006 is set again, with sequential scans off.
 */
const APPEND_EVENTS_ARGS = 'append_events(jsonb, text, boolean)';
const GENERIC = 'set plan_cache_mode = force_generic_plan';
const BY_KEY = 'set enable_seqscan = off';

export async function up(db: Kysely<any>): Promise<void> {
  await sql.raw(APPEND_EVENTS_FUNCTION).execute(db);
  await sql.raw(`alter function ${APPEND_EVENTS_ARGS} ${GENERIC}`).execute(db);
  await sql.raw(`alter function ${APPEND_EVENTS_ARGS} ${BY_KEY}`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(APPEND_EVENTS_0007.replace('create function', 'create or replace function')).execute(db);
  await sql.raw(`alter function ${APPEND_EVENTS_ARGS} ${GENERIC}`).execute(db);
}
