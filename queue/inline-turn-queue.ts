import type { EnqueueOptions, TurnJob, TurnProcessor, TurnQueue } from './turn-queue.js';

interface Pending {
  job: TurnJob;
  attempt: number;
  /** The dedupe key in `known`. */
  key: string;
  enqueuedAt: number;
  /** This job's id (TurnContext.jobId): the same on each of its attempts, unique in the process. */
  id: string;
}

export interface InlineQueueOptions {
  /** Attempts per job when the processor throws. @defaultValue 3 */
  attempts?: number;
  /** First retry delay; doubles each attempt. @defaultValue 1000 */
  backoffMs?: number;
  /** How long close() lets active turns finish before aborting them. @defaultValue 10000 */
  graceMs?: number;
}

/**
 * The turn queue of a single process (embedded mode): the same processor as under BullMQ, with
 * bounded concurrency, retries with exponential backoff, idempotent enqueue per run, and a
 * graceful close. Jobs live in memory; queued runs are durable in the runs table, and the
 * worker's start-up sweep re-enqueues them after a restart.
 */
export class InlineTurnQueue implements TurnQueue {
  private readonly pending: Pending[] = [];
  /** Runs with a job waiting or running (BullMQ's "job with this id exists"). */
  private readonly known = new Set<string>();
  private readonly active = new Map<Promise<void>, AbortController>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private processor?: TurnProcessor;
  private concurrency = 1;
  private closing?: Promise<void>;
  private added = 0;

  constructor(private readonly options: InlineQueueOptions = {}) {}

  async enqueue(job: TurnJob, options?: EnqueueOptions): Promise<void> {
    if (this.closing) throw new Error('the turn queue is closed');
    const key = options?.key ? `${job.runId}-${options.key}` : job.runId;
    if ((!options?.wake || options.key) && this.known.has(key)) return;
    this.known.add(key);
    this.pending.push({ job, attempt: 1, key, enqueuedAt: Date.now(), id: `${key}#${++this.added}` });
    this.pump();
  }

  async startWorker(processor: TurnProcessor, concurrency: number): Promise<void> {
    if (this.processor) throw new Error('worker already started');
    this.processor = processor;
    this.concurrency = concurrency;
    this.pump();
  }

  private pump(): void {
    while (this.processor && this.consuming && !this.closing && this.active.size < this.concurrency && this.pending.length > 0) {
      this.run(this.pending.shift()!);
    }
  }

  private run(item: Pending): void {
    const controller = new AbortController();
    const task = this.processor!(item.job, {
      signal: controller.signal,
      takeover: item.attempt > 1,
      enqueuedAt: item.enqueuedAt,
      jobId: item.id,
    }).then(
      () => {
        this.known.delete(item.key);
      },
      () => {
        const attempts = this.options.attempts ?? 3;
        if (item.attempt >= attempts || this.closing) {
          this.known.delete(item.key);
          return;
        }
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (this.closing) return;
          this.pending.push({ ...item, attempt: item.attempt + 1 });
          this.pump();
        }, (this.options.backoffMs ?? 1000) * 2 ** (item.attempt - 1));
        this.timers.add(timer);
      },
    );
    this.active.set(task, controller);
    void task.finally(() => {
      this.active.delete(task);
      this.pump();
    });
  }

  private consuming = true;

  async stopConsuming(): Promise<void> {
    this.consuming = false;
    await Promise.allSettled([...this.active.keys()]);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.timers) clearTimeout(timer);
      this.pending.length = 0;
      const grace = new Promise<void>((resolve) => setTimeout(resolve, this.options.graceMs ?? 10_000).unref());
      await Promise.race([Promise.allSettled([...this.active.keys()]), grace]);
      for (const controller of this.active.values()) controller.abort(new Error('worker shutting down'));
      await Promise.allSettled([...this.active.keys()]);
    })();
    return this.closing;
  }
}
