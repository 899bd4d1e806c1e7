/**
 * Where a client's read goes when there is a read replica (DATABASE_READ_URL). Replay, history, the
 * long-poll, thread lists and search may be answered by the replica, but only when its copy holds
 * everything the read must see; otherwise the primary answers at once: a client never misses an
 * event and never waits for the replica to catch up. Writes, claims, fencing and every read a
 * writer makes stay on the primary: only the gateway's client reads come through here.
 *
 * A read by seq is checked per thread: the replica's statement returns the thread's last_seq there
 * with the events (one statement, one snapshot), and the replica's answer is taken when that
 * reaches the seq the read must see: the thread's last_seq on the primary read after the request
 * came (a primary-key read, batched), or a seq the gateway has seen published (stored before it
 * was published), whichever the caller knows. A read with no seq (lists, search) goes to the
 * replica when it has replayed the primary's WAL position read after the request came
 * (./replica-position.ts): it then holds every write committed before.
 *
 * A replica that fails a read (down, a query cancelled by a recovery conflict, a migration not
 * replayed yet, a page past the statement timeout) hands it to the primary, and for the next second
 * every read goes straight to the primary (a replica that does not answer is not waited on by
 * every read). A list or search over its time budget (57014) fails as it would on the primary: it
 * is not run twice. Without a replica every read goes to the primary with nothing added.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from './schema.js';
import { ReplicaFreshness } from './replica-position.js';
import { isTimeoutError } from '../errors/backing-services.js';
import { metrics } from '../metrics/index.js';

export type ClientRead = 'replay' | 'history' | 'poll' | 'list' | 'search';

/** How long reads skip a replica that failed one. */
const RETRY_REPLICA_MS = 1_000;

/** What a read returns on a server, with how far that server's copy of the thread reaches. */
export interface CheckedRead<T> {
  value: T;
  /** The thread's last_seq in the snapshot the value was read from; undefined when the thread is not there. */
  lastSeq: number | undefined;
}

export interface SeqRead<T> {
  /**
   * The seq the replica's copy of the thread must reach for its answer to be taken: a seq known to
   * be stored when the read was asked for. Undefined: the thread is not on the primary (deleted),
   * which then answers. Only called when there is a replica.
   */
  need(): number | undefined | Promise<number | undefined>;
  /** The read, on either server. */
  read(db: Kysely<Database>): Promise<CheckedRead<T>>;
}

export class ReadRouting {
  private readonly freshness: ReplicaFreshness | undefined;
  /** The replica failed its last read or check (logged once until it answers again). */
  private failing = false;
  /** Reads skip the replica until then (performance.now()), after a failure. */
  private skipUntil = 0;

  constructor(
    readonly primary: Kysely<Database>,
    /** Undefined without DATABASE_READ_URL. */
    readonly replica?: Kysely<Database>,
    private readonly log?: Logger,
  ) {
    this.freshness = replica && new ReplicaFreshness(primary, replica, { onCheckFailed: (error) => this.replicaFailed(error) });
  }

  /** A read by seq: the replica's answer when its copy of the thread reaches `need()`, else the primary's. */
  async bySeq<T>(kind: ClientRead, read: SeqRead<T>): Promise<T> {
    if (this.replicaUp()) {
      // Both at once: the check costs no time beside the read it decides on.
      const [copy, need] = await Promise.all([this.onReplica(read.read, this.replica!, false), read.need()]);
      if (copy && need !== undefined && copy.lastSeq !== undefined && copy.lastSeq >= need) {
        metrics.clientRead(kind, 'replica');
        return copy.value;
      }
    }
    metrics.clientRead(kind, 'primary');
    return (await read.read(this.primary)).value;
  }

  /**
   * A read with no seq to check (a list, a search): on the replica when its WAL replay has reached
   * the primary's position read after the request came, else on the primary.
   */
  async latest<T>(kind: ClientRead, read: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    const came = performance.now();
    if (this.replicaUp() && (await this.freshness!.currentSince(came))) {
      const value = await this.onReplica(async (db) => ({ value: await read(db) }), this.replica!, true);
      if (value) {
        metrics.clientRead(kind, 'replica');
        return value.value;
      }
    }
    metrics.clientRead(kind, 'primary');
    return read(this.primary);
  }

  private replicaUp(): boolean {
    return this.replica !== undefined && performance.now() >= this.skipUntil;
  }

  /** The read on the replica; undefined when the replica failed it (the primary is asked instead). */
  private async onReplica<R>(read: (db: Kysely<Database>) => Promise<R>, replica: Kysely<Database>, ownTimeouts: boolean): Promise<R | undefined> {
    try {
      const value = await read(replica);
      if (this.failing) {
        this.failing = false;
        this.log?.info('the read replica answers again');
      }
      return value;
    } catch (error) {
      if (ownTimeouts && isTimeoutError(error)) throw error;
      this.replicaFailed(error);
      return undefined;
    }
  }

  private replicaFailed(error: unknown): void {
    this.skipUntil = performance.now() + RETRY_REPLICA_MS;
    if (this.failing) return;
    this.failing = true;
    this.log?.warn({ err: error }, 'the read replica failed; clients\' reads go to the primary until it answers again');
  }
}
