/**
 * A throwaway streaming replica of a throwaway Postgres cluster (./throwaway.ts): `pg_basebackup -R`
 * of the primary, through a replication slot of its own (the primary keeps the WAL the replica has
 * not received), started as a hot standby on a free port of its own. Stopped and deleted like every
 * throwaway: close(), the exit hook, or the reaper of the next run (its dir is a `pg-` one).
 *
 * Initdb's trust lines already let loopback replication connections in, and wal_level `replica`
 * and max_wal_senders are Postgres's defaults, so the primary needs nothing more.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { asPostgres, pgBinDir, runCommand, startThrowawayCluster, type ThrowawayPostgres } from './throwaway.js';
import { waitFor } from './wait.js';

export interface ThrowawayReplica extends ThrowawayPostgres {
  /** `pg_wal_replay_pause()`, then waits until replay has stopped: from here the replica falls behind every write. */
  pause(): Promise<void>;
  /** `pg_wal_replay_resume()`. */
  resume(): Promise<void>;
  /** Waits until the replica has replayed everything the primary has written so far. */
  caughtUp(timeoutMs?: number): Promise<void>;
}

/** One statement on `url` (the `postgres` database), on a connection of its own. */
export async function queryOn<T extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** `settings`: the replica's server settings beyond the throwaway defaults (give it those of the primary). */
export async function startThrowawayReplica(primary: ThrowawayPostgres, settings: string[] = []): Promise<ThrowawayReplica> {
  const slot = `replica_${randomBytes(4).toString('hex')}`;
  const cluster = await startThrowawayCluster({
    settings: ['hot_standby=on', ...settings],
    init: (data, dir) => runCommand(
      ...asPostgres(path.join(pgBinDir(), 'pg_basebackup'), [
        '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data,
        '-R', '-X', 'stream', '--create-slot', '--slot', slot, '-c', 'fast', '--no-sync',
      ]),
      dir,
    ),
  });
  // The helpers' own connections (pause, resume, catching up), closed with the replica.
  const admin = new pg.Pool({ connectionString: cluster.url, max: 1 });
  admin.on('error', () => {});
  const onReplica = async <T extends Record<string, unknown>>(text: string, values: unknown[] = []) => (await admin.query<T>(text, values)).rows;
  return {
    url: cluster.url,
    port: cluster.port,
    dir: cluster.dir,
    get running() {
      return cluster.running;
    },
    stop: cluster.stop,
    start: cluster.start,
    log: cluster.log,
    async close() {
      await admin.end().catch(() => {});
      await cluster.close();
      // The slot would keep the primary's WAL for a replica that is gone.
      if (primary.running) await queryOn(primary.url, 'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1', [slot]).catch(() => {});
    },
    async pause() {
      await onReplica('select pg_wal_replay_pause()');
      const paused = async () => (await onReplica<{ state: string }>('select pg_get_wal_replay_pause_state() as state'))[0]!.state === 'paused';
      await waitFor(paused, 10_000, 'the replica to pause its replay', 20);
    },
    async resume() {
      await onReplica('select pg_wal_replay_resume()');
    },
    async caughtUp(timeoutMs = 15_000) {
      const [{ lsn }] = (await queryOn<{ lsn: string }>(primary.url, 'select pg_current_wal_insert_lsn()::text as lsn')) as [{ lsn: string }];
      const replayed = async () => (await onReplica<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn]))[0]!.ok;
      await waitFor(replayed, timeoutMs, () => `the replica to replay up to ${lsn}:\n${cluster.log()}`, 20);
    },
  };
}
