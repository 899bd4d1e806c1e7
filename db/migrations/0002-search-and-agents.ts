import { sql, type Kysely } from 'kysely';

/**
 * Full-text search over messages (a stored tsvector with a GIN index; the 'simple' configuration
 * because conversations come in every language and stemming for one would mis-rank the others),
 * and soft deletion of agents (threads keep the agent they were bound to).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table messages add column search_tsv tsvector
    generated always as (to_tsvector('simple', content)) stored`.execute(db);
  await sql`create index messages_search_idx on messages using gin (search_tsv)`.execute(db);
  await db.schema.alterTable('agents').addColumn('deleted_at', 'timestamptz').execute();
  await db.schema.createIndex('agents_workspace_idx').on('agents').columns(['workspace_id', 'created_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('agents_workspace_idx').ifExists().execute();
  await db.schema.alterTable('agents').dropColumn('deleted_at').execute();
  await sql`drop index if exists messages_search_idx`.execute(db);
  await sql`alter table messages drop column search_tsv`.execute(db);
}
