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
 */
import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import { readEventsAfterEach, type ReplayRead, type StoredEvent } from '../db/events.repository.js';
import { findThreadsById, type Owner } from '../db/threads.repository.js';
import type { Database, Thread } from '../db/schema.js';

/** Keys per statement: a batch of replays returns up to this many pages. */
const MAX_BATCH = 100;

export interface ReplayPage {
  events: StoredEvent[];
  threadExists: boolean;
}

export class BatchedReads {
  private readonly threads: DataLoader<string, Thread | undefined>;
  private readonly replays: DataLoader<ReplayRead, ReplayPage>;

  constructor(db: Kysely<Database>, readonly pageSize = 500) {
    // setImmediate: the batch is sent after this poll's frames have all been handled.
    const options = { cache: false, maxBatchSize: MAX_BATCH, batchScheduleFn: (send: () => void) => void setImmediate(send) };
    this.threads = new DataLoader(async (ids) => {
      const distinct = [...new Set(ids)];
      const found = new Map((await findThreadsById(db, distinct)).map((thread) => [thread.id, thread]));
      return ids.map((id) => found.get(id));
    }, options);
    this.replays = new DataLoader(async (reads) => {
      const keyOf = (read: ReplayRead) => `${read.afterSeq}:${read.threadId}`;
      const distinct = [...new Map(reads.map((read) => [keyOf(read), read])).values()];
      const pages = await readEventsAfterEach(db, distinct, this.pageSize);
      const byKey = new Map(distinct.map((read, i) => [keyOf(read), pages[i]!]));
      return reads.map((read) => byKey.get(keyOf(read))!);
    }, options);
  }

  /** The thread if it exists and belongs to the owner (someone else's looks missing). */
  async ownedThread(threadId: string, owner: Owner): Promise<Thread | undefined> {
    const thread = await this.threads.load(threadId);
    return thread && thread.workspace_id === owner.workspaceId && thread.user_id === owner.userId ? thread : undefined;
  }

  /**
   * Up to pageSize events after afterSeq, oldest first, and whether the thread still exists. A
   * page shared with other readers is theirs too: do not change it.
   */
  eventsAfter(threadId: string, afterSeq: number): Promise<ReplayPage> {
    return this.replays.load({ threadId, afterSeq });
  }
}
