import { sql, type Kysely } from 'kysely';
import { CLAIM_RUN_FUNCTION } from './0010/claim-run.js';

/**
 * The job that claimed a run's attempt is stored with the attempt (runs.claimed_by), by the claim
 * itself. A job re-delivered after its worker died may take the run over only from the attempt it
 * claimed, never from a newer one (a sweeper's takeover) that is alive. That used to be recorded on
 * the BullMQ job (Job.updateData) after every claim: one more Redis round trip and a Lua script per
 * turn, about 5 % of a worker's samples, and not recorded at all when the worker died before it.
 * A resumed parked run records the job that resumed it too (turn-state.repository.ts).
 *
 * The old six-argument claim_run stays, for workers of the previous version during a rolling
 * upgrade; a run they claim has no claimed_by, so a re-delivery of the new version does not take it
 * over: the heartbeat sweeper's takeover does, once its heartbeat is stale.
 */
const GENERIC = 'set plan_cache_mode = force_generic_plan';
const CLAIM_RUN_ARGS = 'claim_run(text, boolean, int, double precision, text, boolean, text, text)';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('claimed_by', 'text').execute();
  await sql.raw(CLAIM_RUN_FUNCTION).execute(db);
  await sql.raw(`alter function ${CLAIM_RUN_ARGS} ${GENERIC}`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`drop function if exists ${CLAIM_RUN_ARGS}`).execute(db);
  await db.schema.alterTable('runs').dropColumn('claimed_by').execute();
}
