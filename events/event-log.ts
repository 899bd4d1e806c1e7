/**
 * The event log as writers see it: append a thread's events and have them published once stored.
 * One per process, built in the composition root (app/node.ts) and handed to everyone who
 * writes events, so that storing and publishing happen in one place, in one order.
 */
import type { AppendItem, StoredEvent } from '../db/events.repository.js';

/** A stored event; for an item that finished its run, the thread's next queued run (to wake). */
export interface AppendedEvent extends StoredEvent {
  nextRunId?: string;
}

export interface EventLog {
  /**
   * Stores `items` together (all or none, one transaction; give items of one thread and one fence
   * only), then publishes them on their thread's channel, in seq order. Resolves with the stored
   * events, in the items' order, once they are stored and their publish has been tried (a failed
   * publish is logged: gateways fill gaps from the log). Rejects with FencedError or
   * ThreadGoneError when the items were refused, or with the store's error when the write failed
   * (then nothing of them was stored), or with an UncertainWriteError when the connection failed
   * while the write was in flight (it may have committed: the caller settles it by its write id
   * before it writes again).
   */
  append(items: readonly AppendItem[]): Promise<AppendedEvent[]>;
  /**
   * Publishes events a caller stored in a transaction of its own (a user's message with its run,
   * a cancelled queued run), in the order given.
   */
  publish(threadId: string, events: readonly StoredEvent[]): Promise<void>;
  /** Writes what is queued, then refuses new appends. Safe to call twice. */
  close(): Promise<void>;
}

/** Counters of the log since it was built: a plain object that metrics can read. */
export interface EventLogStats {
  /** Batches written (successfully or not) and the events they stored. */
  batches: number;
  events: number;
  /** Items refused (fenced off, thread gone); batches that failed; deadlock retries. */
  refused: number;
  /** Writers whose thread another transaction held when their batch was written: written again on their own. */
  detoured: number;
  failedBatches: number;
  deadlockRetries: number;
  /** The largest batch so far, in items, and the time spent writing batches (ms). */
  maxBatch: number;
  writeMs: number;
}

/**
 * The connection failed while a write was in flight: it may or may not have committed. Settle it
 * with `voidEventWrite(db, writeId)` before writing the same events again (a late copy of the
 * write then fails instead of storing them twice). Carries the cause's `code` and message, so it
 * still reads as the outage it is (isConnectionError).
 */
export class UncertainWriteError extends Error {
  readonly code?: string;

  constructor(readonly writeId: string, override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
    this.name = 'UncertainWriteError';
    this.code = (cause as { code?: string } | undefined)?.code;
  }
}
