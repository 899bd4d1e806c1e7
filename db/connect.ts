/**
 * Opens the store. One factory picks the dialect; everything above it sees only `Kysely<Database>`
 * and runs the same migrations and queries on either.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { metrics, observeQuery } from '../metrics/index.js';

export type StoreOptions =
  | { kind: 'postgres'; url: string; poolSize?: number }
  /** PGlite: a real Postgres compiled to WASM, in this process, with its files under `dataDir`. */
  | { kind: 'pglite'; dataDir: string };

export interface Store {
  db: Kysely<Database>;
  description: string;
  /** Closes the pool or the embedded database. Safe to call twice. */
  close(): Promise<void>;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'postgres': {
      const pool = new pg.Pool({
        connectionString: options.url,
        max: options.poolSize ?? 10,
        connectionTimeoutMillis: 5_000,
        idleTimeoutMillis: 30_000,
      });
      // An idle client that errors (server restart) must not crash the process; the pool drops it.
      pool.on('error', () => metrics.dbError(undefined));
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: observeQuery });
      return { db, description: 'postgres', close: once(() => db.destroy()) };
    }
    case 'pglite': {
      const dir = path.join(options.dataDir, 'pglite');
      const releaseLock = await lockDataDir(dir);
      try {
        // Loaded only in embedded mode: the WASM build costs memory and start-up time. It runs on
        // a thread of its own, so a burst of queries does not stall the sockets' event loop.
        const { PGliteThreadClient } = await import('./pglite-client.js');
        const { PGliteDialect } = await import('kysely-pglite-dialect');
        const client = await PGliteThreadClient.open(dir);
        const db = new Kysely<Database>({ dialect: new PGliteDialect(client as never), log: observeQuery });
        return {
          db,
          description: `embedded PGlite in ${dir}`,
          close: once(async () => {
            await db.destroy();
            await releaseLock();
          }),
        };
      } catch (error) {
        await releaseLock();
        throw error;
      }
    }
    default:
      throw new Error(`unknown store kind ${(options as { kind: string }).kind}`);
  }
}

/** Kept for callers that only need a Postgres handle (tests, tools). */
export function openDatabase(options: { kind: 'postgres'; url: string; poolSize?: number }): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export class DataDirInUseError extends Error {
  constructor(dir: string, pid: number) {
    super(`${dir} is in use by process ${pid}; one process at a time can open the embedded database (stop it, or give this one another DATA_DIR)`);
    this.name = 'DataDirInUseError';
  }
}

/** PGlite files must be opened by one process only: a pid lock file, taken over when stale. */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const file = path.join(path.dirname(dir), 'pglite.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return once(() => rm(file, { force: true }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && isAlive(pid)) throw new DataDirInUseError(dir, pid);
      if (pid === process.pid) throw new DataDirInUseError(dir, pid);
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function once(fn: () => Promise<unknown>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn().then(() => undefined));
}
