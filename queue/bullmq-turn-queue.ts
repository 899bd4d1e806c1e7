import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeConnection, type RedisConnections } from '../redis/connections.js';
import type { EnqueueOptions, TurnJob, TurnProcessor, TurnQueue } from './turn-queue.js';

const QUEUE_NAME = 'turns';

/** BullMQ on Redis: any number of gateways enqueue, any number of worker processes consume. */
export class BullmqTurnQueue implements TurnQueue {
  private readonly queue: Queue<TurnJob>;
  private worker?: Worker<TurnJob>;
  /** Connections BullMQ was handed (it leaves those open on close: they are closed here). */
  private readonly connections: Redis[] = [];
  private closing?: Promise<void>;

  constructor(
    private readonly redis: RedisConnections,
    private readonly onError: (error: Error) => void,
  ) {
    this.queue = new Queue<TurnJob>(QUEUE_NAME, { connection: this.connection('queue'), prefix: `${redis.prefix}bull` });
    this.queue.on('error', onError);
  }

  private connection(role: 'queue' | 'queue-blocking'): Redis {
    const connection = this.redis.connect(role);
    this.connections.push(connection);
    return connection;
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
        // BullMQ makes its blocking connection as a copy of this one (same options).
        connection: this.connection('queue-blocking'),
        prefix: `${this.redis.prefix}bull`,
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
      await Promise.all(this.connections.map(closeConnection));
    })();
    return this.closing;
  }
}
