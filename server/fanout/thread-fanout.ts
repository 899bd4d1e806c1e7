/**
 * Delivery of thread events to this gateway's sockets, with resume by seq.
 *
 * The gateway subscribes to a thread's broker channel once while any of its sockets follows the
 * thread, and forwards each event with one uWS topic publish (./topic-publish.ts). A socket that
 * joins with `after_seq` first replays the log from Postgres (./replay.ts); meanwhile live events
 * are buffered for it. After the replay it is either level with the live stream (it joins the topic
 * at once) or ahead of it (the log was read before the broker delivered the newest events): then it
 * gets live events directly, skipping those it already has, until the live stream reaches it, and
 * only then joins the topic (./live-delivery.ts). Gaps in the live stream are filled from the log
 * (./gap-fill.ts), and a deleted thread lets its followers go (./thread-deletion.ts). This file
 * holds the per-thread states: who follows what, and the broker subscription of each thread.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import { decodeBrokerEvents, isThreadDeletedMessage, threadChannel, threadDeletedFrame } from '../../broker/index.js';
import type { BatchedReads } from '../batched-reads.js';
import type { Connection } from '../ws/connection.js';
import { baseline, type FanoutParts, type Follower, type Mode, type ThreadState } from './thread-state.js';
import { Topic } from './topic-publish.js';
import { replay } from './replay.js';
import { fillGap, resyncAll } from './gap-fill.js';
import { tellDeleted } from './thread-deletion.js';
import { deliver, goLiveIfLevel } from './live-delivery.js';

export class ThreadFanout {
  private readonly threads = new Map<string, ThreadState>();
  private readonly parts: FanoutParts;

  constructor(
    private readonly app: TemplatedApp,
    private readonly broker: Broker,
    reads: BatchedReads,
    log: Logger,
    /** See FanoutParts.asRequestOf. */
    asRequestOf: <T>(connection: Connection, read: () => Promise<T>) => Promise<T>,
  ) {
    this.parts = {
      reads,
      log,
      asRequestOf,
      isCurrent: (state) => this.threads.get(state.threadId) === state,
      unfollow: (connection, threadId) => this.unfollow(connection, threadId),
    };
    // Whatever was published while the broker was cut off is recovered from the log.
    broker.onReconnect(() => resyncAll(this.parts, this.threads.values()));
  }

  isFollowing(connection: Connection, threadId: string): boolean {
    return this.threads.get(threadId)?.followers.has(connection) ?? false;
  }

  /** Threads with a broker subscription on this gateway (metrics, leak tests). */
  get threadCount(): number {
    return this.threads.size;
  }

  /** The sockets following a thread on this gateway and how far each is (metrics, tests). */
  followersOf(threadId: string): Array<{ connection: Connection; mode: Mode; sentSeq: number }> {
    return [...(this.threads.get(threadId)?.followers.values() ?? [])].map(({ connection, mode, sentSeq }) => ({ connection, mode, sentSeq }));
  }

  /** Broker channels this gateway's process is subscribed to (metrics, leak tests). */
  get brokerChannelCount(): number {
    return this.broker.channelCount;
  }

  /**
   * Sends the socket every event with seq > afterSeq, then keeps it live. The caller has checked
   * that the connection may read the thread. Re-following restarts from the new afterSeq.
   */
  async follow(connection: Connection, threadId: string, afterSeq: number | Promise<number>): Promise<void> {
    // Re-following: the old follower is dropped at once (its broker channel, if it was the last,
    // is let go in the background), so the new one is registered in this same tick.
    if (this.isFollowing(connection, threadId)) void this.unfollow(connection, threadId).catch(() => {});
    // Registered synchronously: from here on, live events are kept for this socket, and a frame
    // handled after this call (an unsubscribe) sees it. The starting point may be decided later
    // (a promise): nothing is sent before it is known.
    // A socket that closed while its frame waited (for a slot, for the database) is past its close
    // handler's clean-up: registering it now would leave a follower nobody removes.
    if (connection.closed) return;
    const state = this.stateFor(threadId);
    const follower: Follower = { connection, mode: 'replaying', sentSeq: 0, buffer: [] };
    state.followers.set(connection, follower);
    connection.threads.add(threadId);
    try {
      follower.sentSeq = await afterSeq;
      await state.ready;
    } catch (error) {
      await this.unfollow(connection, threadId);
      throw error;
    }
    if (!(await replay(this.parts, state, follower))) return;
    follower.mode = 'catching_up';
    goLiveIfLevel(state, follower);
  }

  /**
   * Stops the socket following the thread. Takes effect at once (synchronously); the promise is
   * the release of the broker channel when it was the thread's last follower here.
   */
  async unfollow(connection: Connection, threadId: string): Promise<void> {
    const state = this.threads.get(threadId);
    if (connection.threadCount > 0) connection.threads.delete(threadId);
    if (!state || !state.followers.delete(connection)) return;
    state.topic.unsubscribe(connection);
    if (state.followers.size === 0) {
      this.threads.delete(threadId);
      await state.ready.catch(() => {});
      await state.unsubscribe?.();
    }
  }

  /** Called from the socket's close handler: the socket can no longer be touched. */
  async dropConnection(connection: Connection): Promise<void> {
    if (connection.threadCount === 0) return;
    await Promise.all([...connection.threads].map((threadId) => this.unfollow(connection, threadId)));
  }

  private stateFor(threadId: string): ThreadState {
    let state = this.threads.get(threadId);
    if (state) return state;
    const created: ThreadState = {
      threadId,
      topic: new Topic(this.app, `t:${threadId}`),
      filling: false,
      held: [],
      ready: Promise.resolve(),
      lastSeq: null,
      followers: new Map(),
    };
    created.ready = this.broker
      .subscribe(threadChannel(threadId), (message) => this.onBrokerMessage(created, message))
      .then((unsubscribe) => {
        created.unsubscribe = unsubscribe;
        // Unfollowed while the subscription was being made.
        if (this.threads.get(threadId) !== created) return unsubscribe();
      });
    this.threads.set(threadId, (state = created));
    return state;
  }

  private onBrokerMessage(state: ThreadState, message: string): void {
    if (isThreadDeletedMessage(message)) {
      tellDeleted(this.parts, state, threadDeletedFrame(message));
      return;
    }
    const events = decodeBrokerEvents(message);
    if (!events) {
      this.parts.log.warn({ topic: state.topic.name }, 'malformed broker message dropped');
      return;
    }
    for (const { seq, frame } of events) this.onEvent(state, seq, frame);
  }

  private onEvent(state: ThreadState, seq: number, frame: string): void {
    // The first live event: it may not be the next one for sockets that already have the log up
    // to some seq (the publishes in between were lost), so gaps are measured from there.
    state.lastSeq ??= baseline(state);
    if (state.filling) {
      state.held.push({ seq, frame });
    } else if (state.lastSeq !== null && seq > state.lastSeq + 1) {
      // This gateway missed an event (a publish that failed, a broker blip): read it from the log.
      state.held.push({ seq, frame });
      void fillGap(this.parts, state);
    } else {
      deliver(state, seq, frame);
    }
  }
}
