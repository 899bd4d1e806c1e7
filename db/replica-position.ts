/**
 * Whether a read replica (DATABASE_READ_URL) is current enough for a read that has no seq to check
 * (thread lists, search): it is when its replay has reached the WAL position the primary had at
 * most `maxStalenessMs` before.
 *
 * Sampled on demand, not on a timer: a check reads the primary's position, then the replica's (one
 * cheap statement on each), only when such a read comes and no check of the last `maxStalenessMs`
 * says the replica is current; its answer serves every read until then. An idle gateway sends
 * nothing, a busy one about one check per window. A timer would cost two statements every tick on
 * every gateway, whether anyone lists or not.
 *
 * The replica's position is read after the primary has answered and is compared with every primary
 * position sampled within the window: under a steady stream of writes a replica is always a little
 * behind the primary's position of the same instant, but has passed the one of a few ms before.
 *
 * The primary's position is pg_current_wal_lsn(), where its WAL is written out to: with
 * synchronous_commit on (the default) every transaction that others can see has its commit there.
 * The insert position would also count records still in the WAL buffers, which the replica cannot
 * have until the WAL writer writes them (up to wal_writer_delay later), and it would find a current
 * replica behind. With synchronous_commit off a commit is visible before it is written: a list on
 * the replica may then miss what was committed within that delay, as it may miss what was
 * committed within the window.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** An LSN (`16/B374D848`) as a number that compares. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** How far the primary has written its WAL: every transaction committed (synchronously) before this call is before it. */
export async function primaryWalPosition(db: Kysely<Database>): Promise<bigint> {
  const { rows } = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db);
  return parseLsn(rows[0]!.lsn);
}

/** How far a replica has replayed its primary's WAL; undefined on a server that is not replaying (not a standby). */
export async function replicaReplayPosition(db: Kysely<Database>): Promise<bigint | undefined> {
  const { rows } = await sql<{ lsn: string | null }>`select pg_last_wal_replay_lsn()::text as lsn`.execute(db);
  const lsn = rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : undefined;
}

export interface FreshnessOptions {
  /** How long before a read the primary position the replica has reached may have been sampled. @defaultValue 250 */
  maxStalenessMs?: number;
  /** Least time between two checks: a replica that lags is not asked again for every read. @defaultValue 50 */
  minCheckIntervalMs?: number;
  /** A check failed (the primary or the replica did not answer); the replica is then not taken as current. */
  onCheckFailed?: (error: unknown) => void;
}

export class ReplicaFreshness {
  private readonly maxStalenessMs: number;
  private readonly minCheckIntervalMs: number;
  /** Primary positions sampled within the window, oldest first. */
  private samples: Array<{ at: number; lsn: bigint }> = [];
  /** When the newest primary position the replica was seen to have replayed was sampled. */
  private reachedAt = -Infinity;
  private lastCheckAt = -Infinity;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly primary: Kysely<Database>,
    private readonly replica: Kysely<Database>,
    private readonly options: FreshnessOptions = {},
  ) {
    this.maxStalenessMs = options.maxStalenessMs ?? 250;
    this.minCheckIntervalMs = options.minCheckIntervalMs ?? 50;
  }

  /**
   * True when the replica has replayed the primary's position of at most `maxStalenessMs` ago.
   * Waits for a check at most `maxStalenessMs` (a replica that hangs is not waited on longer).
   */
  async current(): Promise<boolean> {
    if (this.fresh()) return true;
    if (!this.checking && performance.now() - this.lastCheckAt >= this.minCheckIntervalMs) {
      this.checking = this.check().finally(() => (this.checking = undefined));
    }
    if (!this.checking) return false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.checking, new Promise((resolve) => (timer = setTimeout(resolve, this.maxStalenessMs)))]);
    clearTimeout(timer);
    return this.fresh();
  }

  private fresh(): boolean {
    return performance.now() - this.reachedAt <= this.maxStalenessMs;
  }

  private async check(): Promise<void> {
    const at = (this.lastCheckAt = performance.now());
    try {
      this.samples.push({ at, lsn: await primaryWalPosition(this.primary) });
      const replayed = await replicaReplayPosition(this.replica);
      const oldest = performance.now() - this.maxStalenessMs;
      this.samples = this.samples.filter((sample) => sample.at >= oldest);
      if (replayed === undefined) return;
      for (const sample of this.samples) {
        if (sample.lsn <= replayed && sample.at > this.reachedAt) this.reachedAt = sample.at;
      }
    } catch (error) {
      this.options.onCheckFailed?.(error);
    }
  }
}
