import type { Kysely } from 'kysely';

/**
 * A heartbeat on running runs: the worker holding a run refreshes it while the turn is alive, so a
 * run whose worker is gone (its job lost after the queue gave up, the database cut off mid-turn)
 * is found by its stale heartbeat and taken over or failed, never left `running` forever.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('heartbeat_at', 'timestamptz').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('runs').dropColumn('heartbeat_at').execute();
}
