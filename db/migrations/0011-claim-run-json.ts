import { sql, type Kysely } from 'kysely';
import { CLAIM_RUN_FUNCTION } from './0011/claim-run.js';
import { CLAIM_RUN_FUNCTION as CLAIM_RUN_0010 } from './0010/claim-run.js';

/**
 * claim_run answers in json rather than jsonb (./0011/claim-run.ts). Measured on one connection,
 * 1,000 turns of record_turn, claim_run and append_events as the server sends them (Postgres
 * backend CPU from /proc/<pid>/schedstat, alternating runs): see docs/benchmark.md.
 *
 * A function's result type cannot be changed in place: it is dropped and created again, in this
 * migration's transaction, so other sessions see the old one or the new one. Workers of the
 * previous version call it with the same arguments and parse json as they parsed jsonb: nothing
 * changes for them during a rolling upgrade.
 */
const GENERIC = 'set plan_cache_mode = force_generic_plan';
const CLAIM_RUN_ARGS = 'claim_run(text, boolean, int, double precision, text, boolean, text, text)';

export async function up(db: Kysely<any>): Promise<void> {
  await sql.raw(`drop function ${CLAIM_RUN_ARGS}`).execute(db);
  await sql.raw(CLAIM_RUN_FUNCTION).execute(db);
  await sql.raw(`alter function ${CLAIM_RUN_ARGS} ${GENERIC}`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`drop function ${CLAIM_RUN_ARGS}`).execute(db);
  await sql.raw(CLAIM_RUN_0010).execute(db);
  await sql.raw(`alter function ${CLAIM_RUN_ARGS} ${GENERIC}`).execute(db);
}
