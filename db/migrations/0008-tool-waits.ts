import { sql, type Kysely } from 'kysely';

/**
 * Runs that wait for a person (a tool call to approve) or a client (a frontend tool's result)
 * without holding a worker:
 * - runs.waiting_since: set while the run waits (it stays 'running', so it keeps its thread and its
 *   place in the per-user run limit); replaces the infinite heartbeat that parked runs had. Runs
 *   parked that way are carried over.
 * - runs.client_tools: the tools a frontend offered for this run (OpenAI function definitions).
 * - tool_waits: one row per waited-on call, answered once (the first answer wins), expired by the
 *   workers' sweep (its partial index), cancelled with its run.
 * - agents.require_approval (tool names, a subset of tools) and agents.approval_timeout_s.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('runs')
    .addColumn('waiting_since', 'timestamptz')
    .addColumn('client_tools', 'jsonb')
    .execute();
  await sql`update runs set waiting_since = clock_timestamp(), heartbeat_at = clock_timestamp()
    where status = 'running' and heartbeat_at = 'infinity'::timestamptz`.execute(db);
  // The workers' sweep looks for waiting runs whose answer came but whose resume job got lost.
  await db.schema.createIndex('runs_waiting_idx').on('runs').column('waiting_since').where(sql.ref('waiting_since'), 'is not', null).execute();

  await db.schema
    .createTable('tool_waits')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('tool_call_id', 'text', (c) => c.notNull())
    .addColumn('thread_id', 'text', (c) => c.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('approval','client')`))
    .addColumn('tool_name', 'text', (c) => c.notNull())
    .addColumn('arguments', 'jsonb', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('pending').check(sql`status in ('pending','approved','denied','expired','cancelled','answered')`),
    )
    .addColumn('reason', 'text')
    .addColumn('result', 'text')
    .addColumn('answered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addPrimaryKeyConstraint('tool_waits_pkey', ['run_id', 'tool_call_id'])
    .execute();
  // The expiry sweep: pending waits by deadline.
  await db.schema
    .createIndex('tool_waits_expiry_idx')
    .on('tool_waits')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema.createIndex('tool_waits_thread_idx').on('tool_waits').column('thread_id').execute();

  await db.schema
    .alterTable('agents')
    .addColumn('require_approval', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('approval_timeout_s', 'integer', (c) => c.notNull().defaultTo(3600).check(sql`approval_timeout_s between 1 and 604800`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('approval_timeout_s').dropColumn('require_approval').execute();
  await db.schema.dropTable('tool_waits').ifExists().execute();
  await db.schema.dropIndex('runs_waiting_idx').ifExists().execute();
  await db.schema.alterTable('runs').dropColumn('client_tools').dropColumn('waiting_since').execute();
}
