/**
 * Reads that many sockets make at the same moment go to Postgres together. A reconnect storm is
 * the case: a thousand followers come back within a second, each with a `thread.subscribe` (the
 * owner check) and a replay read. One by one that is two thousand round trips queued on a pool of
 * ten, and every ack waits behind them; batched, the reads asked for in one turn of the event loop
 * (uWS hands over all the frames that arrived in one poll) are one statement each.
 *
 * Batching only, never caching: a read is sent after it was asked for, so it sees every write that
 * committed before the request was handled, exactly as a read of its own would. Identical reads in
 * one batch (followers of one thread resuming from one seq) are read once.
 *
 * With a read replica (db/read-routing.ts) a replay read goes to the replica, batched the same way,
 * and is checked against a seq the caller has seen published or else the thread's last_seq on the
 * primary, read through the owner checks' batch (a primary-key read): the replica's page is taken
 * when its copy of the thread reaches it, else the primary's (batched too) is read.
 */
import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { StoredEvent } from '../db/events.repository.js';
import { readEventsAfterEach, type ReplayRead } from '../db/event-reads.repository.js';
import { findThreadsById } from '../db/threads.repository.js';
import { ReadRouting } from '../db/read-routing.js';
import { isOwnedBy, type Owner } from '../db/owner.js';
import type { Database, Thread } from '../db/schema.js';

/**
 * Loads per statement. A replay page is up to 500 events; each user holds at most
 * RATE_LIMIT_IN_FLIGHT_PER_USER loads at once, so no one user fills a batch.
 */
const MAX_THREADS_PER_BATCH = 100;
const MAX_REPLAYS_PER_BATCH = 32;

export interface ReplayPage {
  events: StoredEvent[];
  threadExists: boolean;
  /** The thread's last_seq on the server that answered (the log reaches at least this far); 0 when it does not exist. */
  lastSeq: number;
}

/**
 * Reads `keys` (distinct) in one statement; if that fails and there were several, each again on
 * its own, so that one read that fails (a page over the statement timeout) fails alone and not
 * every socket that shared its batch. A database that is down fails them all, as it would.
 */
async function readTogether<K, V>(keys: readonly K[], read: (keys: readonly K[]) => Promise<V[]>): Promise<Array<V | Error>> {
  try {
    return await read(keys);
  } catch (error) {
    if (keys.length === 1) return [error as Error];
    return Promise.all(keys.map((key) => read([key]).then(([value]) => value as V, (failed: Error) => failed)));
  }
}

export class BatchedReads {
  private readonly threads: DataLoader<string, Thread | undefined>;
  private readonly replays: DataLoader<ReplayRead, ReplayPage>;
  /** The same reads on the read replica, when there is one. */
  private readonly replicaReplays: DataLoader<ReplayRead, ReplayPage> | undefined;

  constructor(db: Kysely<Database>, readonly pageSize = 500, private readonly routing = new ReadRouting(db)) {
    // setImmediate: the batch is sent after this poll's frames have all been handled.
    const options = { cache: false, batchScheduleFn: (send: () => void) => void setImmediate(send) };
    this.threads = new DataLoader(async (ids) => {
      const distinct = [...new Set(ids)];
      const found = await readTogether(distinct, async (some) => {
        const rows = new Map((await findThreadsById(db, some)).map((thread) => [thread.id, thread]));
        return some.map((id) => rows.get(id));
      });
      const byId = new Map(distinct.map((id, i) => [id, found[i]]));
      return ids.map((id) => byId.get(id));
    }, { ...options, maxBatchSize: MAX_THREADS_PER_BATCH });
    const replaysOn = (server: Kysely<Database>) => new DataLoader<ReplayRead, ReplayPage>(async (reads) => {
      const keyOf = (read: ReplayRead) => `${read.afterSeq}:${read.threadId}`;
      const distinct = [...new Map(reads.map((read) => [keyOf(read), read])).values()];
      const pages = await readTogether(distinct, (some) => readEventsAfterEach(server, some, this.pageSize));
      const byKey = new Map(distinct.map((read, i) => [keyOf(read), pages[i]!]));
      return reads.map((read) => byKey.get(keyOf(read))!);
    }, { ...options, maxBatchSize: MAX_REPLAYS_PER_BATCH });
    this.replays = replaysOn(db);
    this.replicaReplays = routing.replica && replaysOn(routing.replica);
  }

  /** The thread if it exists and belongs to the owner (someone else's looks missing). */
  async ownedThread(threadId: string, owner: Owner): Promise<Thread | undefined> {
    const thread = await this.threads.load(threadId);
    return thread && isOwnedBy(thread, owner) ? thread : undefined;
  }

  /** The thread's last_seq on the primary (read with the owner checks), undefined when it does not exist. */
  async lastSeq(threadId: string): Promise<number | undefined> {
    return (await this.threads.load(threadId))?.last_seq;
  }

  /**
   * Up to pageSize events after afterSeq, oldest first, and whether the thread still exists. A
   * page shared with other readers is theirs too: do not change it.
   *
   * `seen`: a seq the caller knows is stored (it was published). With it a replica's page is taken
   * when the replica has the thread up to there; without it, up to the thread's last_seq on the
   * primary, read now (read it after subscribing to the thread's channel, so that every event
   * published before the subscription is in the page).
   */
  eventsAfter(threadId: string, afterSeq: number, seen?: number): Promise<ReplayPage> {
    const read = { threadId, afterSeq };
    return this.routing.bySeq('replay', {
      need: async () => {
        const stored = seen ?? (await this.lastSeq(threadId));
        return stored === undefined ? undefined : Math.max(stored, afterSeq);
      },
      read: async (server) => {
        const page = await (server === this.routing.replica ? this.replicaReplays! : this.replays).load(read);
        return { value: page, lastSeq: page.threadExists ? page.lastSeq : undefined };
      },
    });
  }
}
