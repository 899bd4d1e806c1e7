import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-search-and-agents.js';
import * as m0003 from './migrations/0003-run-heartbeat.js';
import * as m0004 from './migrations/0004-batched-event-log.js';
import * as m0005 from './migrations/0005-agent-description.js';
import * as m0006 from './migrations/0006-generic-plans.js';
import * as m0007 from './migrations/0007-event-write-ids.js';
import * as m0008 from './migrations/0008-tool-waits.js';
import * as m0009 from './migrations/0009-direct-turn-events.js';
import * as m0010 from './migrations/0010-claimed-by-job.js';
import * as m0011 from './migrations/0011-claim-run-json.js';
import * as m0012 from './migrations/0012-append-events-probes.js';

/** Migrations are compiled in, not read from a folder, so they work the same from tsx and a bundle. */
const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-search-and-agents': m0002,
  '0003-run-heartbeat': m0003,
  '0004-batched-event-log': m0004,
  '0005-agent-description': m0005,
  '0006-generic-plans': m0006,
  '0007-event-write-ids': m0007,
  '0008-tool-waits': m0008,
  '0009-direct-turn-events': m0009,
  '0010-claimed-by-job': m0010,
  '0011-claim-run-json': m0011,
  '0012-append-events-probes': m0012,
};

/** Every migration's name, in order. */
export const MIGRATION_NAMES = Object.keys(migrations);

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Brings the schema to the latest version. Idempotent; two processes may call it at once
 * (Kysely holds a Postgres advisory lock while migrating).
 */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  // On one connection without the pool's statement_timeout: a migration over a large table may
  // take longer than any request is allowed to.
  return db.connection().execute(async (connection) => {
    await sql`set statement_timeout = 0`.execute(connection);
    try {
      const migrator = new Migrator({ db: connection, provider });
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    } finally {
      await sql`reset statement_timeout`.execute(connection).catch(() => {});
    }
  });
}
