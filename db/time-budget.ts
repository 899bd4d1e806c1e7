/**
 * Database time budgets per request class. Every Postgres connection already carries the process's
 * statement_timeout (DATABASE_STATEMENT_TIMEOUT_MS); an expensive request class runs in a
 * transaction with a tighter one (`SET LOCAL`, so it ends with the transaction). A statement over
 * its budget is cancelled by Postgres (SQLSTATE 57014), which requests answer as `unavailable`.
 * PGlite runs one statement at a time in this process and has no timer to cancel one with: there
 * the budget is not enforced (an embedded node serves one user or a few).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

export async function withTimeBudget<T>(db: Kysely<Database>, ms: number, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('statement_timeout', ${String(Math.max(1, Math.round(ms)))}, true)`.execute(trx);
    return work(trx);
  });
}
