import { sql, type Kysely } from 'kysely';

/**
 * The write path's functions (migration 0004) run their statements on generic plans, planned once
 * per connection instead of on every call.
 *
 * plpgsql plans each statement with its parameters' values for the first five calls, then keeps
 * a generic plan only if its estimated cost is no higher than theirs. For these statements it
 * never is: a jsonb or array argument has no statistics, so the generic estimate looks worse than
 * the custom plans. Every call then planned every statement again, for the same plan: primary-key
 * probes into threads, runs and events, whatever the values. Measured with `npm run bench`
 * (closed loop, split, alternating runs), Postgres CPU per turn went from 6.1–7.3 ms to
 * 4.5–5.3 ms.
 *
 * The setting holds only while these functions run. Every other statement is planned as before.
 */
const FUNCTIONS = [
  'append_events(jsonb)',
  'record_turn(text, text, text, text, text, text, text, text, text, int, text, text, text)',
  'claim_run(text, boolean, int, double precision, text, boolean)',
  'cancel_queued_run(text)',
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const fn of FUNCTIONS) await sql.raw(`alter function ${fn} set plan_cache_mode = force_generic_plan`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const fn of FUNCTIONS) await sql.raw(`alter function ${fn} reset plan_cache_mode`).execute(db);
}
