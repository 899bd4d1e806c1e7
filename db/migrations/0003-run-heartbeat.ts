import { sql, type Kysely } from 'kysely';

/**
 * A heartbeat on running runs: the worker holding a run refreshes it while the turn is alive, so a
 * run whose worker is gone (its job lost after the queue gave up, the database cut off mid-turn)
 * is found by its stale heartbeat and taken over or failed, never left `running` forever.
 * And an index for RATE_LIMIT_RUNS_PER_USER, which counts a user's unfinished runs on every send.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('heartbeat_at', 'timestamptz').execute();
  await db.schema
    .createIndex('runs_user_unfinished_idx')
    .on('runs')
    .columns(['workspace_id', 'user_id'])
    .where(sql.ref('status'), 'in', ['queued', 'running'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('runs_user_unfinished_idx').ifExists().execute();
  await db.schema.alterTable('runs').dropColumn('heartbeat_at').execute();
}
