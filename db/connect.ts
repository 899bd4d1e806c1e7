/**
 * Opens the store. One factory picks the dialect; everything above it sees only `Kysely<Database>`.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export type StoreOptions = { kind: 'postgres'; url: string; poolSize?: number };

export function openDatabase(options: StoreOptions): Kysely<Database> {
  switch (options.kind) {
    case 'postgres': {
      const pool = new pg.Pool({
        connectionString: options.url,
        max: options.poolSize ?? 10,
        connectionTimeoutMillis: 5_000,
        // An idle client that errors (server restart) must not crash the process; the pool drops it.
        idleTimeoutMillis: 30_000,
      });
      pool.on('error', () => {});
      return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    }
    default:
      throw new Error(`unknown store kind ${(options as { kind: string }).kind}`);
  }
}
