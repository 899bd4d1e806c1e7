import { Queue, Worker } from 'bullmq';
import type { EnqueueOptions, TurnJob, TurnProcessor, TurnQueue } from './turn-queue.js';

const QUEUE_NAME = 'turns';

/** BullMQ on Redis: any number of gateways enqueue, any number of worker processes consume. */
export class BullmqTurnQueue implements TurnQueue {
  private readonly queue: Queue<TurnJob>;
  private worker?: Worker<TurnJob>;
  private closing?: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly prefix: string,
    private readonly onError: (error: Error) => void,
  ) {
    this.queue = new Queue<TurnJob>(QUEUE_NAME, {
      connection: { url, maxRetriesPerRequest: 2, enableOfflineQueue: false },
      prefix: `${prefix}bull`,
    });
    this.queue.on('error', onError);
  }

  async enqueue(job: TurnJob, options?: EnqueueOptions): Promise<void> {
    // jobId = run id: adding a run that still has a job is ignored by BullMQ. A wake-up must not be
    // swallowed by the run's own job that is just ending, so it gets an id of its own.
    const jobId = options?.key
      ? `${job.runId}-${options.key}`
      : options?.wake
        ? `${job.runId}-wake-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
        : job.runId;
    await this.queue.add('turn', job, {
      jobId,
      attempts: 3,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: 1000,
    });
  }

  async startWorker(processor: TurnProcessor, concurrency: number): Promise<void> {
    if (this.worker) throw new Error('worker already started');
    this.worker = new Worker<TurnJob>(
      QUEUE_NAME,
      async (job, _token, signal) => {
        const { claimedAttempt, ...data } = job.data as TurnJob & { claimedAttempt?: number };
        return processor(data, {
          signal: signal ?? new AbortController().signal,
          // Only the run's own job (id = run id) re-delivered after a stall or a failed attempt.
          takeover: job.id === job.data.runId && (job.stalledCounter > 0 || job.attemptsMade > 0),
          enqueuedAt: job.timestamp,
          claimedAttempt,
          recordAttempt: (attempt) => job.updateData({ ...data, claimedAttempt: attempt } as TurnJob),
        });
      },
      {
        connection: { url: this.url, maxRetriesPerRequest: null },
        prefix: `${this.prefix}bull`,
        concurrency,
        // A worker that dies mid-turn leaves its job stalled; another worker picks it up.
        stalledInterval: 5_000,
        lockDuration: 10_000,
      },
    );
    this.worker.on('error', this.onError);
    await this.worker.waitUntilReady();
  }

  stopConsuming(): Promise<void> {
    // BullMQ's Worker.close() stops fetching and waits for the active jobs (their locks are still
    // renewed meanwhile); the Queue stays open for takeover jobs of released runs.
    return this.worker?.close() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([this.worker?.close(), this.queue.close()]);
    })();
    return this.closing;
  }
}
