/** Whether the store answers: the readiness check's query (GET /ready). */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export async function pingStore(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
