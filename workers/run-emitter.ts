/**
 * Writes a run's events: append to the log (seq assigned there, fenced by the run's attempt), then
 * publish on the thread's channel. A publish that fails is only logged: the event is stored, and
 * gateways fill gaps from the log (and re-sync from it when their broker connection comes back).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { publishStoredEvent } from '../broker/index.js';
import { appendEvent, FencedError, toFrame, type StoredEvent, type WriteFence } from '../db/events.repository.js';
import { isConnectionError } from '../server/errors.js';
import { finishRun, type RunOutcome } from '../db/runs.repository.js';
import type { Database } from '../db/schema.js';
import type { EventPayloads, EventType } from '../protocol/frames.js';
import { metrics } from '../metrics/index.js';

export interface EmitterOptions {
  /** The thread's last seq when this attempt claimed the run: later events of the run are its own. */
  afterSeq: number;
  /** How long a write is retried while the database is unreachable. @defaultValue 30000 */
  retryWindowMs?: number;
}

/**
 * A write that failed because the database was unreachable is retried with backoff for a while,
 * so a database restart pauses a turn instead of failing it. Before each retry the emitter checks
 * whether the lost write committed after all (the connection can drop after COMMIT, before the
 * answer): only this attempt writes the run's events after `afterSeq`, so an event of the run
 * newer than the last one it saw is that write. Nothing is written twice.
 */
export class RunEmitter {
  /** The seq of this attempt's newest event it knows is stored. */
  private lastSeq: number;
  private readonly retryWindowMs: number;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly broker: Broker,
    private readonly threadId: string,
    private readonly fence: WriteFence,
    private readonly log: Logger,
    options: EmitterOptions,
  ) {
    this.lastSeq = options.afterSeq;
    this.retryWindowMs = options.retryWindowMs ?? 30_000;
  }

  async emit<T extends EventType>(type: T, payload: EventPayloads[T]): Promise<void> {
    const event = await this.appendDurably(
      () => appendEvent(this.db, this.threadId, { type, run_id: this.fence.runId, payload }, this.fence),
    );
    await this.publish(event);
  }

  /**
   * Appends `agent_completed` and records the run's outcome in one transaction: a client that sees
   * the event finds the run finished, and a run is never finished without its event.
   */
  async complete(payload: EventPayloads['agent_completed'], outcome: RunOutcome): Promise<void> {
    const event = await this.appendDurably(
      () =>
        this.db.transaction().execute(async (trx) => {
          const stored = await appendEvent(trx, this.threadId, { type: 'agent_completed', run_id: this.fence.runId, payload }, this.fence);
          if (!(await finishRun(trx, this.fence, outcome))) throw new FencedError(this.fence.runId);
          return stored;
        }),
      'agent_completed',
    );
    await this.publish(event);
  }

  /** Any other write of the run (its messages), retried the same way; `landed` tells if a lost one committed. */
  async write(fn: () => Promise<void>, landed: () => Promise<boolean>): Promise<void> {
    await this.retrying(
      () => fn().then(() => true as const),
      async () => (await landed()) || undefined,
    );
  }

  private async appendDurably(append: () => Promise<StoredEvent>, type?: string): Promise<StoredEvent> {
    const event = await this.retrying(append, () => this.landedEvent(type));
    this.lastSeq = Math.max(this.lastSeq, event.seq);
    return event;
  }

  /** `write`, retried while the database is unreachable; after a lost attempt, `landed` may find it committed. */
  private async retrying<T>(write: () => Promise<T>, landed: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + this.retryWindowMs;
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) {
          const found = await landed();
          if (found !== undefined) return found;
        }
        return await write();
      } catch (error) {
        if (!isConnectionError(error) || Date.now() > deadline) throw error;
        if (attempt === 0) this.log.warn({ err: error }, 'database unreachable; retrying the write');
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  /** This attempt's event newer than the last one it knows of, if a lost write committed. */
  private async landedEvent(type?: string): Promise<StoredEvent | undefined> {
    const row = await this.db
      .selectFrom('events')
      .select(['seq', 'type', 'payload'])
      .where('thread_id', '=', this.threadId)
      .where('run_id', '=', this.fence.runId)
      .where('seq', '>', this.lastSeq)
      .$if(type !== undefined, (q) => q.where('type', '=', type!))
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { seq: row.seq, frame: toFrame(row.type, row.payload) } : undefined;
  }

  private async publish(event: StoredEvent): Promise<void> {
    await publishStoredEvent(this.broker, this.threadId, event, this.log);
  }
}

/**
 * Coalesces streamed text into `message_delta` events: a delta is written when 50 ms have passed
 * since the last one or 512 characters are waiting, and on flush(). Fewer, larger events keep the
 * log and the sockets light without visible latency.
 */
export class DeltaCoalescer {
  private pending = '';
  private lastFlush = 0;
  private readonly startedAt = performance.now();
  text = '';

  constructor(
    private readonly emitter: RunEmitter,
    private readonly messageId: string,
    private readonly intervalMs = 50,
    private readonly maxChars = 512,
  ) {}

  async push(delta: string): Promise<void> {
    if (!delta) return;
    if (!this.text) metrics.firstDelta((performance.now() - this.startedAt) / 1000);
    this.pending += delta;
    this.text += delta;
    if (this.pending.length >= this.maxChars || Date.now() - this.lastFlush >= this.intervalMs) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.pending) return;
    const delta = this.pending;
    this.pending = '';
    this.lastFlush = Date.now();
    try {
      await this.emitter.emit('message_delta', { message_id: this.messageId, delta });
    } catch (error) {
      this.pending = delta + this.pending; // not stored: still owed to the log
      throw error;
    }
  }
}
