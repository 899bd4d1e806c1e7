/**
 * Delivery of thread events to this gateway's sockets, with resume by seq.
 *
 * The gateway subscribes to a thread's broker channel once while any of its sockets follows the
 * thread, and forwards each event with one uWS topic publish. A socket that joins with `after_seq`
 * first replays the log from Postgres; meanwhile live events are buffered for it. After the replay
 * it is either level with the live stream (it joins the topic at once) or ahead of it (the log was
 * read before the broker delivered the newest events): then it gets live events directly, skipping
 * those it already has, until the live stream reaches it, and only then joins the topic. The
 * switch happens synchronously inside an event's delivery, so nothing is missed or doubled.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { decodeBrokerEvent, encodeThreadDeleted, isThreadDeletedMessage, threadChannel, threadDeletedFrame } from '../broker/index.js';
import type { BatchedReads } from './batched-reads.js';
import type { Connection } from './connection.js';
import { metrics } from '../metrics/index.js';

type Mode = 'replaying' | 'catching_up' | 'live';

/** A replaying client that takes nothing from its buffer for this long is cut off (1013). */
const REPLAY_STALL_MS = 3_000;

interface Follower {
  connection: Connection;
  mode: Mode;
  /** The highest seq this socket has been sent (or had before it subscribed). */
  sentSeq: number;
  /** Live events that arrived during the replay. */
  buffer: Array<{ seq: number; frame: string }>;
}

interface ThreadState {
  threadId: string;
  topic: string;
  /** A gap is being filled from the log; live events wait in `held` meanwhile. */
  filling: boolean;
  held: Array<{ seq: number; frame: string }>;
  /** Resolves when the broker subscription is active. */
  ready: Promise<void>;
  unsubscribe?: () => Promise<void>;
  /** Highest seq forwarded from the broker; null until the first live event. */
  lastSeq: number | null;
  followers: Map<Connection, Follower>;
}

export class ThreadFanout {
  private readonly threads = new Map<string, ThreadState>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly broker: Broker,
    private readonly reads: BatchedReads,
    private readonly log: Logger,
    /**
     * Runs a replay's read of the log as one of its user's requests in flight
     * (RATE_LIMIT_IN_FLIGHT_PER_USER), so replays cannot take more of the pool than requests can.
     */
    private readonly asRequestOf: <T>(connection: Connection, read: () => Promise<T>) => Promise<T>,
  ) {
    // Whatever was published while the broker was cut off is recovered from the log.
    broker.onReconnect(() => {
      for (const state of this.threads.values()) {
        state.lastSeq ??= baseline(state);
        if (state.lastSeq !== null) void this.fill(state);
      }
    });
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
    /** This follow was overtaken (re-follow, unfollow) or its socket closed: it stops, leaving nothing behind. */
    const gone = () => {
      if (state.followers.get(connection) !== follower) return true;
      if (!connection.closed) return false;
      void this.unfollow(connection, threadId).catch(() => {});
      return true;
    };
    let replayed = 0;
    try {
      follower.sentSeq = await afterSeq;
      await state.ready;
      for (let stalled = 0; ; ) {
        if (gone()) return;
        // Each read also says whether the thread still exists: one deleted before this gateway's
        // subscription was live (its thread_deleted went by unheard) is told now.
        const read = await this.asRequestOf(connection, () => this.reads.eventsAfter(threadId, follower.sentSeq));
        if (gone()) return;
        if (!read.threadExists) {
          connection.send(deletedFrame(threadId));
          await this.unfollow(connection, threadId);
          return;
        }
        const page = read.events;
        // Paced: a page is written as fast as the client takes it, never all at once.
        for (let i = 0; i < page.length; ) {
          connection.cork(() => {
            while (i < page.length && connection.hasRoom()) connection.sendReplay(page[i++]!.frame);
          });
          if (i < page.length) await connection.drained(REPLAY_STALL_MS);
          if (gone()) return;
        }
        if (page.length > 0) follower.sentSeq = page[page.length - 1]!.seq;
        replayed += page.length;
        if (page.length === this.reads.pageSize) continue;
        // The log is read to its end. The live events kept meanwhile follow on from it, unless the
        // first new one leaves a gap (the publishes before it were lost, e.g. while Redis was
        // down): those events are in the log (stored before published), so it is read again.
        const next = Math.min(...follower.buffer.map((e) => e.seq).filter((seq) => seq > follower.sentSeq));
        if (next === Infinity || next === follower.sentSeq + 1) break;
        if (page.length === 0 && ++stalled > 20) {
          this.log.warn({ thread_id: threadId, after_seq: follower.sentSeq, next }, 'events missing from the log; going on');
          break;
        }
        if (page.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } catch (error) {
      await this.unfollow(connection, threadId);
      throw error;
    }
    if (gone()) return;
    connection.cork(() => {
      for (const event of follower.buffer) {
        if (event.seq > follower.sentSeq) {
          connection.send(event.frame);
          follower.sentSeq = event.seq;
        }
      }
    });
    follower.buffer = [];
    metrics.replay(replayed);
    follower.mode = 'catching_up';
    this.goLiveIfLevel(state, follower);
  }

  /**
   * Stops the socket following the thread. Takes effect at once (synchronously); the promise is
   * the release of the broker channel when it was the thread's last follower here.
   */
  async unfollow(connection: Connection, threadId: string): Promise<void> {
    const state = this.threads.get(threadId);
    if (connection.threadCount > 0) connection.threads.delete(threadId);
    if (!state || !state.followers.delete(connection)) return;
    if (!connection.closed) connection.ws?.unsubscribe(state.topic);
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
      topic: `t:${threadId}`,
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
      this.onDeleted(state, threadDeletedFrame(message));
      return;
    }
    const event = decodeBrokerEvent(message);
    if (!event) {
      this.log.warn({ topic: state.topic }, 'malformed broker message dropped');
      return;
    }
    const { seq, frame } = event;
    // The first live event: it may not be the next one for sockets that already have the log up
    // to some seq (the publishes in between were lost), so gaps are measured from there.
    state.lastSeq ??= baseline(state);
    if (state.filling) {
      state.held.push({ seq, frame });
    } else if (state.lastSeq !== null && seq > state.lastSeq + 1) {
      // This gateway missed an event (a publish that failed, a broker blip): read it from the log.
      state.held.push({ seq, frame });
      void this.fill(state);
    } else {
      this.deliver(state, seq, frame);
    }
  }

  /** Delivers the events after `lastSeq` from the log, then the live events held meanwhile. */
  private async fill(state: ThreadState): Promise<void> {
    if (state.filling) return;
    state.filling = true;
    // Until it succeeds (the database may be restarting too): delivering the held events past a gap
    // would break the seq order every client relies on. Nothing new is written while the database
    // is down, so `held` stays small.
    for (let attempt = 0; this.threads.get(state.threadId) === state; attempt++) {
      try {
        let read = 0;
        let exists: boolean;
        for (;;) {
          const page = await this.reads.eventsAfter(state.threadId, state.lastSeq ?? 0);
          exists = page.threadExists;
          for (const event of page.events) this.deliver(state, event.seq, event.frame);
          read += page.events.length;
          if (page.events.length < this.reads.pageSize) break;
        }
        // Nothing new after a reconnect: the thread may have been deleted while this gateway
        // could not hear it (its thread_deleted was published then).
        if (read === 0 && state.held.length === 0 && !exists) {
          state.filling = false;
          this.onDeleted(state, deletedFrame(state.threadId));
          return;
        }
        break;
      } catch (error) {
        this.log.warn({ err: error, thread_id: state.threadId }, 'filling a gap from the log failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
      }
    }
    state.filling = false;
    const held = state.held.sort((a, b) => a.seq - b.seq);
    state.held = [];
    for (const event of held) this.deliver(state, event.seq, event.frame);
  }

  /** The thread was deleted (on any gateway): every follower is told, then let go. */
  private onDeleted(state: ThreadState, frame: string): void {
    if (this.threads.get(state.threadId) !== state) return;
    for (const connection of [...state.followers.keys()]) {
      connection.send(frame);
      void this.unfollow(connection, state.threadId).catch((error) => this.log.warn({ err: error }, 'unfollowing a deleted thread failed'));
    }
  }

  private deliver(state: ThreadState, seq: number, frame: string): void {
    if (state.lastSeq !== null && seq <= state.lastSeq) return;
    state.lastSeq = seq;
    metrics.fanout(frame);
    metrics.frameOut(frame, this.app.numSubscribers(state.topic));
    this.app.publish(state.topic, frame, false);
    for (const follower of state.followers.values()) {
      switch (follower.mode) {
        case 'live':
          follower.sentSeq = seq;
          follower.connection.checkBackpressure();
          break;
        case 'replaying':
          follower.buffer.push({ seq, frame });
          break;
        case 'catching_up':
          if (seq > follower.sentSeq) {
            follower.connection.send(frame);
            follower.sentSeq = seq;
          }
          this.goLiveIfLevel(state, follower);
          break;
      }
    }
  }

  private goLiveIfLevel(state: ThreadState, follower: Follower): void {
    // Level means equal: a socket ahead of the live stream (the log had events the broker had not
    // delivered yet) stays in catch-up, which skips what it already has, until the stream reaches it.
    if (state.lastSeq === null || follower.sentSeq !== state.lastSeq || follower.connection.closed) return;
    follower.mode = 'live';
    follower.connection.ws?.subscribe(state.topic);
  }
}

/**
 * Where the live stream of a thread must continue from, when no live event has been forwarded yet:
 * the lowest seq a socket past its replay has. Null while every socket is still replaying (each
 * checks its own buffer against the log).
 */
function baseline(state: ThreadState): number | null {
  let min: number | null = null;
  for (const follower of state.followers.values()) {
    if (follower.mode !== 'replaying' && (min === null || follower.sentSeq < min)) min = follower.sentSeq;
  }
  return min;
}

/** The thread_deleted frame for a deletion this gateway did not hear of. */
function deletedFrame(threadId: string): string {
  return threadDeletedFrame(encodeThreadDeleted(threadId, new Date().toISOString()));
}
