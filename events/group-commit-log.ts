/**
 * The event log with group commit: the events of every run in flight in this process are appended
 * together. While one batch is being written, the next one fills with whatever writers append
 * meanwhile; when the write returns, everything waiting goes in the next batch at once. There is no
 * timer: with one run in flight a batch is one event, written as soon as it is appended, so
 * streaming is never held back; under load a batch grows to what arrived during one round trip,
 * and the cost per event (a round trip, a commit, a hot-row update) is shared by the whole batch.
 *
 * One batch is in flight at a time, and each batch is published, in its items' order, as soon as
 * it commits and before the next batch is written: so every thread's events are published in seq
 * order, and never before they are stored.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { publishStoredEvent } from '../broker/index.js';
import { appendBatch, type AppendItem, type AppendOutcome, type StoredEvent } from '../db/events.repository.js';
import type { Database } from '../db/schema.js';
import { isConnectionError } from '../server/errors.js';
import type { AppendedEvent, EventLog, EventLogStats } from './event-log.js';

export interface GroupCommitOptions {
  /** Most items in one batch (a writer's items are never split across batches). @defaultValue 500 */
  maxBatch?: number;
  /** Called after every batch write (size in items, duration, whether it was stored), e.g. for metrics. */
  onBatch?: (size: number, ms: number, stored: boolean) => void;
  /** Called with the events a caller stored in a transaction of its own, when it hands them over for publishing. */
  onStoredElsewhere?: (count: number) => void;
}

/** A batch that deadlocks (40P01: Postgres aborted it to let another go on) is written again, this often. */
const DEADLOCK_RETRIES = 5;

interface Pending {
  items: readonly AppendItem[];
  resolve: (events: AppendedEvent[]) => void;
  reject: (error: unknown) => void;
}

type Written = { events: AppendedEvent[] } | { error: unknown };

export class GroupCommitEventLog implements EventLog {
  readonly stats: EventLogStats = { batches: 0, events: 0, refused: 0, failedBatches: 0, deadlockRetries: 0, maxBatch: 0, writeMs: 0 };
  private readonly maxBatch: number;
  private readonly onBatch?: GroupCommitOptions['onBatch'];
  private readonly onStoredElsewhere?: GroupCommitOptions['onStoredElsewhere'];
  private queue: Pending[] = [];
  private draining?: Promise<void>;
  private closed = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly broker: Broker,
    private readonly log: Logger,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.onBatch = options.onBatch;
    this.onStoredElsewhere = options.onStoredElsewhere;
  }

  append(items: readonly AppendItem[]): Promise<AppendedEvent[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.closed) return Promise.reject(new Error('the event log is closed'));
    const [first] = items;
    const fence = (item: AppendItem) => (item.fence ? `${item.fence.runId}\u0000${item.fence.attempt}` : '');
    if (items.some((item) => item.threadId !== first!.threadId || fence(item) !== fence(first!))) {
      // Refused (or not) together and published on one channel: see EventLog.append.
      return Promise.reject(new Error('one append takes items of one thread and one fence'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  async publish(threadId: string, events: readonly StoredEvent[]): Promise<void> {
    this.onStoredElsewhere?.(events.length);
    await this.send(threadId, events);
  }

  /** Publishes stored events, issued in order at once: the broker keeps the order of publishes on its one connection. */
  private async send(threadId: string, events: readonly StoredEvent[]): Promise<void> {
    await Promise.all(events.map((event) => publishStoredEvent(this.broker, threadId, event, this.log)));
  }

  close(): Promise<void> {
    this.closed = true;
    return this.draining ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    // Appends made in the same tick as the first one join it (no timer: a microtask later).
    await null;
    while (this.queue.length > 0) {
      const batch = this.take();
      const written = await this.write(batch);
      // Synchronously, in batch order, before the next batch is written: see the file comment.
      batch.forEach((pending, i) => this.settle(pending, written[i]!));
    }
    this.draining = undefined;
  }

  /** The waiting writers whose items fit in one batch (at least one writer, whatever its size). */
  private take(): Pending[] {
    let size = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || size + this.queue[count]!.items.length <= this.maxBatch)) {
      size += this.queue[count]!.items.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** One outcome per writer; never throws. */
  private async write(batch: Pending[]): Promise<Written[]> {
    const items = batch.flatMap((pending) => pending.items);
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        const outcomes = await appendBatch(this.db, items);
        this.record(items.length, started, true);
        let next = 0;
        return batch.map((pending) => this.outcomeOf(outcomes.slice(next, (next += pending.items.length))));
      } catch (error) {
        this.record(items.length, started, false);
        if ((error as { code?: string }).code === '40P01' && attempt <= DEADLOCK_RETRIES) {
          this.stats.deadlockRetries++;
          continue;
        }
        this.stats.failedBatches++;
        if (batch.length > 1 && !isConnectionError(error)) {
          // Not an outage: most likely one writer's value the store refuses. Written one writer at
          // a time, only that writer fails (same order, so seqs still follow the appends).
          this.log.warn({ err: error, writers: batch.length }, 'event batch failed; writing its parts one by one');
          const results: Written[] = [];
          for (const pending of batch) results.push(...(await this.write([pending])));
          return results;
        }
        return batch.map(() => ({ error }));
      }
    }
  }

  /** A writer's result: its events, or the first refusal among its items (they share thread and fence). */
  private outcomeOf(outcomes: AppendOutcome[]): Written {
    const events: AppendedEvent[] = [];
    let refused: Error | undefined;
    for (const outcome of outcomes) {
      if ('refused' in outcome) {
        this.stats.refused++;
        refused ??= outcome.refused;
      } else {
        events.push(outcome.nextRunId ? { ...outcome.event, nextRunId: outcome.nextRunId } : outcome.event);
      }
    }
    if (refused) return { error: refused };
    this.stats.events += events.length;
    return { events };
  }

  private record(size: number, started: number, stored: boolean): void {
    const ms = performance.now() - started;
    this.stats.batches++;
    if (stored) this.stats.maxBatch = Math.max(this.stats.maxBatch, size);
    this.stats.writeMs += ms;
    this.onBatch?.(size, ms, stored);
  }

  private settle(pending: Pending, written: Written): void {
    if ('error' in written) {
      pending.reject(written.error);
      return;
    }
    // A writer's items are all of one thread (see EventLog.append).
    const threadId = pending.items[0]!.threadId;
    void this.send(threadId, written.events).then(() => pending.resolve(written.events));
  }
}
