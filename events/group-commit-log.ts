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
 *
 * A batch never waits for a thread another transaction holds (a long transaction on one thread
 * would hold every run's events): that thread's writers come back `busy` and take a detour, a
 * lane of their own that writes them one at a time, waiting for the lock, in order; the thread's
 * later writers join the detour until it is empty, so its events still go in append order.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { publishStoredEvents } from '../broker/index.js';
import { appendBatch, type AppendItem, type AppendOutcome, type StoredEvent } from '../db/events.repository.js';
import { newWriteId } from '../db/ids.js';
import type { Database } from '../db/schema.js';
import { isConnectionError } from '../errors/backing-services.js';
import { UncertainWriteError, type AppendedEvent, type EventLog, type EventLogStats } from './event-log.js';

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

type Written = { events: AppendedEvent[] } | { error: unknown } | { busy: true };

const threadOf = (pending: Pending) => pending.items[0]!.threadId;

export class GroupCommitEventLog implements EventLog {
  readonly stats: EventLogStats = { batches: 0, events: 0, refused: 0, detoured: 0, failedBatches: 0, deadlockRetries: 0, maxBatch: 0, writeMs: 0 };
  private readonly maxBatch: number;
  private readonly onBatch?: GroupCommitOptions['onBatch'];
  private readonly onStoredElsewhere?: GroupCommitOptions['onStoredElsewhere'];
  private queue: Pending[] = [];
  private draining?: Promise<void>;
  /** Threads on a detour: their writers, in append order, written one at a time, waiting for the lock. */
  private readonly detours = new Map<string, Pending[]>();
  private readonly lanes = new Set<Promise<void>>();
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

  /** Publishes one writer's stored events (one thread's) as one message: see publishStoredEvents. */
  private async send(threadId: string, events: readonly StoredEvent[]): Promise<void> {
    await publishStoredEvents(this.broker, threadId, events, this.log);
  }

  async close(): Promise<void> {
    this.closed = true;
    // A batch may start detours, and a detour's writers may still arrive from the queue: until both are empty.
    while (this.draining || this.lanes.size > 0) await Promise.all([this.draining, ...this.lanes]);
  }

  private async drain(): Promise<void> {
    // Appends made in the same tick as the first one join it (no timer: a microtask later).
    await null;
    while (this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) break; // every waiting writer joined a detour
      const written = await this.write(batch);
      // Synchronously, in batch order, before the next batch is written: see the file comment.
      batch.forEach((pending, i) => this.settle(pending, written[i]!));
    }
    this.draining = undefined;
  }

  /**
   * The waiting writers whose items fit in one batch (at least one writer, whatever its size),
   * after moving the writers of threads on a detour to their detour.
   */
  private take(): Pending[] {
    const batch: Pending[] = [];
    let size = 0;
    let at = 0;
    for (; at < this.queue.length; at++) {
      const pending = this.queue[at]!;
      const detour = this.detours.get(threadOf(pending));
      if (detour) {
        detour.push(pending);
        continue;
      }
      if (batch.length > 0 && size + pending.items.length > this.maxBatch) break;
      batch.push(pending);
      size += pending.items.length;
    }
    this.queue.splice(0, at);
    return batch;
  }

  /** Starts (or joins) the detour of a writer whose thread was busy. */
  private detour(pending: Pending): void {
    this.stats.detoured++;
    const thread = threadOf(pending);
    const detour = this.detours.get(thread);
    if (detour) {
      detour.push(pending);
      return;
    }
    const writers = [pending];
    this.detours.set(thread, writers);
    const lane = (async () => {
      for (let next = writers[0]; next; next = writers[0]) {
        const [written] = await this.write([next], true);
        writers.shift();
        this.settle(next, written!);
      }
      this.detours.delete(thread);
    })().finally(() => this.lanes.delete(lane));
    this.lanes.add(lane);
  }

  /** One outcome per writer; never throws. `wait`: wait for locked threads (a detour) instead of coming back busy. */
  private async write(batch: Pending[], wait = false): Promise<Written[]> {
    const items = batch.flatMap((pending) => pending.items);
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const writeId = newWriteId();
      try {
        const outcomes = await appendBatch(this.db, items, { writeId, wait });
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
        // The connection failed mid-write: it may have committed. The writers settle it by its id.
        if (isConnectionError(error)) return batch.map(() => ({ error: new UncertainWriteError(writeId, error) }));
        if (batch.length > 1) {
          // Not an outage: most likely one writer's value the store refuses. Written one writer at
          // a time, only that writer fails (same order, so seqs still follow the appends).
          this.log.warn({ err: error, writers: batch.length }, 'event batch failed; writing its parts one by one');
          const results: Written[] = [];
          for (const pending of batch) results.push(...(await this.write([pending], wait)));
          return results;
        }
        return [{ error }];
      }
    }
  }

  /** A writer's result: its events, or the first refusal among its items (they share thread and fence). */
  private outcomeOf(outcomes: AppendOutcome[]): Written {
    // A writer's items are of one thread: busy together or not at all.
    if (outcomes.some((outcome) => 'busy' in outcome)) return { busy: true };
    const events: AppendedEvent[] = [];
    let refused: Error | undefined;
    for (const outcome of outcomes) {
      if ('busy' in outcome) continue;
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
    if ('busy' in written) {
      this.detour(pending);
      return;
    }
    if ('error' in written) {
      pending.reject(written.error);
      return;
    }
    // A writer's items are all of one thread (see EventLog.append).
    const threadId = pending.items[0]!.threadId;
    void this.send(threadId, written.events).then(() => pending.resolve(written.events));
  }
}
