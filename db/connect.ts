/**
 * Opens the store. One factory picks the dialect; everything above it sees only `Kysely<Database>`
 * and runs the same migrations and queries on either.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect, type LogEvent } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { processStatements, StatementCounter } from './statement-counter.js';
import { metrics, observeQuery, statementKind } from '../metrics/index.js';

export type StoreOptions =
  | {
      kind: 'postgres';
      url: string;
      poolSize?: number;
      /** statement_timeout of every connection (the default database time budget). @defaultValue none */
      statementTimeoutMs?: number;
    }
  /** PGlite: a real Postgres compiled to WASM, in this process, with its files under `dataDir`. */
  | { kind: 'pglite'; dataDir: string };

export interface Store {
  db: Kysely<Database>;
  description: string;
  /** The statements this store has sent (shared by every store of the process unless given its own). */
  statements: StatementCounter;
  /** Closes the pool or the embedded database. Safe to call twice. */
  close(): Promise<void>;
}

export async function openStore(options: StoreOptions, statements: StatementCounter = processStatements): Promise<Store> {
  const log = statementLog(statements);
  switch (options.kind) {
    case 'postgres':
      return openPostgres(options, statements, log);
    case 'pglite': {
      const dir = path.join(options.dataDir, 'pglite');
      const releaseLock = await lockDataDir(dir);
      try {
        // Loaded only in embedded mode: the WASM build costs memory and start-up time. It runs on
        // a thread of its own, so a burst of queries does not stall the sockets' event loop.
        const { PGliteThreadClient } = await import('./pglite-client.js');
        const { PGliteDialect } = await import('kysely-pglite-dialect');
        const client = await PGliteThreadClient.open(dir);
        const db = new Kysely<Database>({ dialect: new PGliteDialect(client as never), log });
        return {
          db,
          description: `embedded PGlite in ${dir}`,
          statements,
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

/**
 * kysely calls this for every statement it runs, on either dialect: one round trip each. One hook
 * per statement: the store's counter (statements per turn) and the metrics.
 */
function statementLog(statements: StatementCounter): (event: LogEvent) => void {
  return (event) => {
    const kind = statementKind(event.query.sql);
    statements.record(kind, event.queryDurationMillis);
    observeQuery(event, kind);
  };
}

type PostgresOptions = Extract<StoreOptions, { kind: 'postgres' }>;

function openPostgres(options: PostgresOptions, statements: StatementCounter, log: (event: LogEvent) => void, readOnly = false): Store {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    ...(readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
  });
  survivePoolErrors(pool, () => metrics.dbError(undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
  return { db, description: readOnly ? 'postgres read replica' : 'postgres', statements, close: once(() => db.destroy()) };
}

/**
 * A read replica of a Postgres store (DATABASE_READ_URL; the embedded store has none): a pool of
 * its own whose transactions are all read-only (a standby refuses writes anyway; this also holds
 * when the URL names a server that would take them). Its statements are counted on a counter of
 * its own, apart from the primary's, and in the same metrics.
 */
export function openReadReplica(options: Omit<PostgresOptions, 'kind'>, statements = new StatementCounter()): Store {
  return openPostgres({ ...options, kind: 'postgres' }, statements, statementLog(statements), true);
}

/** Kept for callers that only need a Postgres handle (tests, tools). */
export function openDatabase(options: { kind: 'postgres'; url: string; poolSize?: number }): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
  survivePoolErrors(pool);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * A lost connection must fail its query, never the process. The pool listens for errors of idle
 * clients only (and then drops them); a client whose connection is cut while it runs a query (a
 * network drop, a crashed server) emits 'error' with no listener, which would throw. The query
 * fails with the same error, and the pool drops the client when it is released.
 */
function survivePoolErrors(pool: pg.Pool, onError: () => void = () => {}): void {
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
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
