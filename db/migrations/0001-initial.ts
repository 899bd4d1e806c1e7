import { sql, type Kysely } from 'kysely';

/**
 * The id of the global agent this migration seeds. A migration is frozen, so it keeps its own copy
 * of the literal; runtime code uses DEFAULT_AGENT_ID of db/agents.repository.ts, which must stay
 * equal to it (databases already hold this row).
 */
export const DEFAULT_AGENT_ID = 'ag_default';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('agents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('model', 'text')
    .addColumn('system_prompt', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('temperature', 'real')
    .addColumn('tools', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('max_tool_iterations', 'integer', (c) => c.notNull().defaultTo(8))
    .addColumn('busy_policy', 'text', (c) => c.notNull().defaultTo('enqueue').check(sql`busy_policy in ('enqueue','reject','interrupt')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db
    .insertInto('agents')
    .values({
      id: DEFAULT_AGENT_ID,
      workspace_id: null,
      name: 'Assistant',
      system_prompt: 'You are a helpful assistant. Use the tools when they help. Answer concisely.',
      tools: JSON.stringify(['get_current_time', 'calculator']),
    })
    .execute();

  await db.schema
    .createTable('threads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id'))
    .addColumn('title', 'text')
    .addColumn('last_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('archived_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('threads_owner_idx')
    .on('threads')
    .columns(['workspace_id', 'user_id', 'updated_at', 'id'])
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('thread_id', 'text', (c) => c.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('queued','running','completed','cancelled','failed')`),
    )
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('user_message_id', 'text', (c) => c.notNull())
    .addColumn('assistant_message_id', 'text')
    .addColumn('error', 'jsonb')
    .addColumn('usage', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .execute();
  // The per-thread FIFO of pending turns, and the sweeper's scan of unfinished runs.
  await db.schema.createIndex('runs_thread_idx').on('runs').columns(['thread_id', 'created_at']).execute();
  await db.schema
    .createIndex('runs_unfinished_idx')
    .on('runs')
    .columns(['status', 'created_at'])
    .where(sql.ref('status'), 'in', ['queued', 'running'])
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('thread_id', 'text', (c) => c.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('run_id', 'text')
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('user','assistant','tool','system')`))
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('tool_calls', 'jsonb')
    .addColumn('tool_call_id', 'text')
    .addColumn('client_message_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addUniqueConstraint('messages_client_message_id_key', ['thread_id', 'client_message_id'])
    .execute();
  await db.schema
    .createIndex('messages_client_message_id_idx')
    .on('messages')
    .column('client_message_id')
    .where('client_message_id', 'is not', null)
    .execute();
  await db.schema.createIndex('messages_thread_idx').on('messages').columns(['thread_id', 'created_at']).execute();

  await db.schema
    .createTable('events')
    .addColumn('thread_id', 'text', (c) => c.notNull().references('threads.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addPrimaryKeyConstraint('events_pkey', ['thread_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['events', 'messages', 'runs', 'threads', 'agents']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
