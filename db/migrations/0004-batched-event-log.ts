import { sql, type Kysely } from 'kysely';
import { APPEND_EVENTS_FUNCTION, APPEND_EVENTS_TYPE } from './0004/append-events.js';
import { RECORD_TURN_FUNCTION } from './0004/record-turn.js';
import { CANCEL_QUEUED_RUN_FUNCTION, CLAIM_RUN_FUNCTION, NEW_ID_FUNCTION } from './0004/runs.js';

/**
 * The write paths of a turn as functions, each one round trip: appending a batch of events (the
 * group-committed event log), recording a user's turn, claiming a run, cancelling a queued run.
 * Their bodies are in ./0004/, frozen with this migration (a later change is a new migration).
 * No table changes: seq assignment keeps threads.last_seq, now bumped once per batch.
 */
const CREATE = [APPEND_EVENTS_TYPE, APPEND_EVENTS_FUNCTION, NEW_ID_FUNCTION, CANCEL_QUEUED_RUN_FUNCTION, CLAIM_RUN_FUNCTION, RECORD_TURN_FUNCTION];

/**
 * Indexes the functions' lookups need so they stay index probes on large tables: a send with a
 * client_message_id finds the original message_created of its run (the dedupe) without walking
 * the user's events, and the busy check, the claim's "anything ahead of it" and the next run to
 * wake read only a thread's unfinished runs, not all of them.
 */
const INDEXES = [
  `create index events_message_created_idx on events (thread_id, run_id) where type = 'message_created'`,
  `create index runs_thread_unfinished_idx on runs (thread_id, created_at, id) where status in ('queued', 'running')`,
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const statement of [...CREATE, ...INDEXES]) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists runs_thread_unfinished_idx`.execute(db);
  await sql`drop index if exists events_message_created_idx`.execute(db);
  await sql`drop function if exists record_turn(text, text, text, text, text, text, text, text, text, int, text, text, text)`.execute(db);
  await sql`drop function if exists claim_run(text, boolean, int, double precision, text, boolean)`.execute(db);
  await sql`drop function if exists cancel_queued_run(text)`.execute(db);
  await sql`drop function if exists new_id(text)`.execute(db);
  await sql`drop function if exists append_events(jsonb)`.execute(db);
  await sql`drop type if exists event_batch_item`.execute(db);
}
