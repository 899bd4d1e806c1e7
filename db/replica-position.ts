/**
 * Whether a read replica (DATABASE_READ_URL) holds everything a read with no seq to check (thread
 * lists, search) must show: it does when its replay has reached the WAL position the primary had
 * after the read came. So a list shows the thread just created, renamed or archived, and the
 * message just sent, whichever gateway or worker wrote it.
 *
 * Checked on demand, not on a timer: a check reads the primary's position, then the replica's (one
 * cheap statement on each). The reads that come while a check is in flight share the next one, so
 * a busy gateway runs checks back to back, one pair of statements for any number of reads; an idle
 * one sends nothing. A check that found the replica current also serves every read that came
 * before its primary position was read.
 *
 * The primary's position is pg_current_wal_lsn(), where its WAL is written out to: with
 * synchronous_commit on (the default) every transaction that others can see has its commit there.
 * With synchronous_commit off a commit is visible before it is written, so the insert position is
 * taken instead; the replica cannot have those records until the WAL writer writes them (up to
 * wal_writer_delay later), so lists and search go to the primary more often on such a server.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** An LSN (`16/B374D848`) as a number that compares. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/**
 * A WAL position on the primary past the commit of every transaction committed before this call:
 * where its WAL is written out to (pg_current_wal_lsn()) when commits wait for their WAL (the
 * default); with synchronous_commit off a commit returns before its WAL is written, so the insert
 * position (pg_current_wal_insert_lsn(), records still in the WAL buffers included) is taken then.
 */
export async function primaryWalPosition(db: Kysely<Database>): Promise<bigint> {
  const { rows } = await sql<{ lsn: string }>`
    select (case when current_setting('synchronous_commit') = 'off' then pg_current_wal_insert_lsn() else pg_current_wal_lsn() end)::text as lsn`.execute(db);
  return parseLsn(rows[0]!.lsn);
}

/** How far a replica has replayed its primary's WAL; undefined on a server that is not replaying (not a standby). */
export async function replicaReplayPosition(db: Kysely<Database>): Promise<bigint | undefined> {
  const { rows } = await sql<{ lsn: string | null }>`select pg_last_wal_replay_lsn()::text as lsn`.execute(db);
  const lsn = rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : undefined;
}

export interface FreshnessOptions {
  /** A check failed (the primary or the replica did not answer); the replica is then not taken as current. */
  onCheckFailed?: (error: unknown) => void;
  /** The longest a read waits for the check it needs (a replica or primary that hangs is not waited on). @defaultValue 250 */
  maxWaitMs?: number;
}

export class ReplicaFreshness {
  private readonly maxWaitMs: number;
  /** When the newest primary position the replica was seen to have replayed was sampled (performance.now()). */
  private reachedAt = -Infinity;
  /** The check in flight, and when its primary position was sampled (before its statement was sent). */
  private checking: Promise<void> | undefined;
  /** The check that starts once the one in flight has returned: every read that came meanwhile waits for it. */
  private queued: Promise<void> | undefined;

  constructor(
    private readonly primary: Kysely<Database>,
    private readonly replica: Kysely<Database>,
    private readonly options: FreshnessOptions = {},
  ) {
    this.maxWaitMs = options.maxWaitMs ?? 250;
  }

  /**
   * True when the replica has replayed the primary's WAL position read after `since`
   * (performance.now() when the read came): then its copy holds everything committed before the
   * read came, whoever wrote it. Reads that come while a check is in flight share the next one.
   * Waits for that check (two position reads) at most `maxWaitMs`, never for the replica to catch up.
   */
  async currentSince(since: number): Promise<boolean> {
    if (this.reachedAt > since) return true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.round(), new Promise((resolve) => (timer = setTimeout(resolve, this.maxWaitMs)))]);
    clearTimeout(timer);
    return this.reachedAt > since;
  }

  /** A check whose primary position is read after now: the next one to start. */
  private round(): Promise<void> {
    if (!this.checking) return (this.checking = this.check().finally(() => (this.checking = undefined)));
    this.queued ??= this.checking.then(() => {
      this.queued = undefined;
      return this.round();
    });
    return this.queued;
  }

  private async check(): Promise<void> {
    const at = performance.now();
    try {
      const position = await primaryWalPosition(this.primary);
      const replayed = await replicaReplayPosition(this.replica);
      if (replayed !== undefined && position <= replayed && at > this.reachedAt) this.reachedAt = at;
    } catch (error) {
      this.options.onCheckFailed?.(error);
    }
  }
}
