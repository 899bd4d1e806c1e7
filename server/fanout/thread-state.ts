/**
 * What this gateway holds per followed thread, shared by the parts of the fan-out: its sockets
 * (followers) and how far each is, the live stream's position, and the gap fill's hold. One state
 * per thread while any socket here follows it; it owns the thread's broker subscription and topic.
 */
import type { Logger } from 'pino';
import type { BatchedReads } from '../batched-reads.js';
import type { Connection } from '../ws/connection.js';
import type { Topic } from './topic-publish.js';

/**
 * Where a follower is: reading the log (live events wait in its buffer), past the log but not yet
 * level with the live stream (gets live events directly, skipping those it has), or on the topic.
 */
export type Mode = 'replaying' | 'catching_up' | 'live';

export interface Follower {
  connection: Connection;
  mode: Mode;
  /** The highest seq this socket has been sent (or had before it subscribed). */
  sentSeq: number;
  /** Live events that arrived during the replay. */
  buffer: Array<{ seq: number; frame: string }>;
}

export interface ThreadState {
  threadId: string;
  /** The uWS topic its live followers are subscribed to. */
  topic: Topic;
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

/** What the parts of the fan-out (replay, gap fill, deletion) use of it. */
export interface FanoutParts {
  readonly reads: BatchedReads;
  readonly log: Logger;
  /** Whether `state` is still the thread's state here (not let go since). */
  isCurrent(state: ThreadState): boolean;
  /** Stops `connection` following the thread (at once); resolves when the broker channel is let go. */
  unfollow(connection: Connection, threadId: string): Promise<void>;
  /**
   * Runs a replay's read of the log as one of its user's requests in flight
   * (RATE_LIMIT_IN_FLIGHT_PER_USER), so replays cannot take more of the pool than requests can.
   */
  asRequestOf<T>(connection: Connection, read: () => Promise<T>): Promise<T>;
}

/**
 * Where the live stream of a thread must continue from, when no live event has been forwarded yet:
 * the lowest seq a socket past its replay has. Null while every socket is still replaying (each
 * checks its own buffer against the log).
 */
export function baseline(state: ThreadState): number | null {
  let min: number | null = null;
  for (const follower of state.followers.values()) {
    if (follower.mode !== 'replaying' && (min === null || follower.sentSeq < min)) min = follower.sentSeq;
  }
  return min;
}
