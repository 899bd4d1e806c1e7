import { sql, type Kysely } from 'kysely';

/**
 * A short description of each agent, for the people who pick one: members see it (with the name,
 * tools and busy policy) while the system prompt stays with the workspace's admins.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').addColumn('description', 'text', (c) => c.notNull().defaultTo('')).execute();
  await sql`update agents set description = 'A general assistant that can tell the time and calculate.' where id = 'ag_default'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('description').execute();
}
