import { sql, type Kysely } from 'kysely';
import { APPEND_EVENTS_FUNCTION } from './0007/append-events.js';
import { VOID_EVENT_WRITE_FUNCTION } from './0007/void-event-write.js';
import { APPEND_EVENTS_FUNCTION as APPEND_EVENTS_0004 } from './0004/append-events.js';

/**
 * Two fixes to the event log's write (see ./0007/ for the functions):
 * - a batch no longer waits for a thread another transaction holds: that thread's items come back
 *   'busy' and are written on their own, so one locked thread cannot stall every run's events;
 * - every write carries an id, kept in event_writes, so a late copy of a write that its writer
 *   gave up for lost (and voided) stores nothing: a write is never stored twice, even when a cut
 *   network delivers the lost one after the retry.
 * event_writes holds one short row per write; ids start with their time (db/ids.ts newWriteId),
 * so rows older than an hour are pruned by a range on the primary key (a worker's prune task);
 * byte order (collate "C") keeps that range exact whatever the database's collation.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table event_writes (id text collate "C" primary key, void boolean not null default false)`.execute(db);
  await sql`drop function append_events(jsonb)`.execute(db);
  await sql.raw(APPEND_EVENTS_FUNCTION).execute(db);
  // As migration 0006 did for the old one: plan its statements once per connection.
  await sql`alter function append_events(jsonb, text, boolean) set plan_cache_mode = force_generic_plan`.execute(db);
  await sql.raw(VOID_EVENT_WRITE_FUNCTION).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists void_event_write(text)`.execute(db);
  await sql`drop function if exists append_events(jsonb, text, boolean)`.execute(db);
  await sql.raw(APPEND_EVENTS_0004).execute(db);
  await sql`alter function append_events(jsonb) set plan_cache_mode = force_generic_plan`.execute(db);
  await sql`drop table if exists event_writes`.execute(db);
}
