import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeConnection, type RedisConnections } from '../redis/connections.js';
import { ProcessSlots } from './process-slots.js';
import { partitionOf, turnQueueNames } from './turn-partitions.js';
import type { EnqueueOptions, TurnJob, TurnProcessor, TurnQueue } from './turn-queue.js';

/**
 * BullMQ on Redis: any number of gateways enqueue, any number of worker processes consume. Turns
 * are spread over `partitions` queues by thread (./turn-partitions.ts); a worker process consumes
 * every one of them. `concurrency` bounds the turns the process runs at once over all partitions
 * (./process-slots.ts); with one partition it is BullMQ's own bound.
 */
export class BullmqTurnQueue implements TurnQueue {
  private readonly names: string[];
  private readonly queues: Array<Queue<TurnJob>>;
  private readonly workers: Array<Worker<TurnJob>> = [];
  /** Connections BullMQ was handed (it leaves those open on close: they are closed here). */
  private readonly connections: Redis[] = [];
  private closing?: Promise<void>;

  constructor(
    private readonly redis: RedisConnections,
    private readonly onError: (error: Error) => void,
    partitions = 1,
  ) {
    this.names = turnQueueNames(partitions, redis.cluster);
    // One connection for every queue's commands (on a cluster it routes each queue's to its slot).
    const connection = this.connection('queue');
    this.queues = this.names.map((name) => {
      const queue = new Queue<TurnJob>(name, { connection, prefix: `${redis.prefix}bull` });
      queue.on('error', onError);
      return queue;
    });
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
    await this.queues[partitionOf(job.threadId, this.queues.length)]!.add('turn', job, {
      jobId,
      attempts: 3,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: 1000,
    });
  }

  async startWorker(processor: TurnProcessor, concurrency: number): Promise<void> {
    if (this.workers.length > 0) throw new Error('worker already started');
    // One partition: BullMQ's own bound. Several: the process's (./process-slots.ts).
    const slots = this.names.length > 1 ? new ProcessSlots(concurrency) : undefined;
    for (const name of this.names) {
      let index = -1;
      const worker = new Worker<TurnJob>(
        name,
        async (job, _token, signal) => {
          // A job of an earlier version may carry a `claimedAttempt` it recorded: not part of the job.
          const { claimedAttempt: _recorded, ...data } = job.data as TurnJob & { claimedAttempt?: number };
          await slots?.enter(index);
          try {
            return await processor(data, {
              signal: signal ?? new AbortController().signal,
              // Only the run's own job (id = run id) re-delivered after a stall or a failed attempt.
              takeover: job.id === job.data.runId && (job.stalledCounter > 0 || job.attemptsMade > 0),
              enqueuedAt: job.timestamp,
              jobId: job.id!,
            });
          } finally {
            slots?.leave(index);
          }
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
      if (slots) index = slots.add(worker, () => wakeMainLoop(worker));
      worker.on('error', this.onError);
      this.workers.push(worker);
    }
    await Promise.all(this.workers.map((worker) => worker.waitUntilReady()));
  }

  stopConsuming(): Promise<void> {
    // BullMQ's Worker.close() stops fetching and waits for the active jobs (their locks are still
    // renewed meanwhile); the Queue stays open for takeover jobs of released runs.
    return Promise.all(this.workers.map((worker) => worker.close())).then(() => undefined);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.workers.map((worker) => worker.close()), ...this.queues.map((queue) => queue.close())]);
      await Promise.all(this.connections.map(closeConnection));
    })();
    return this.closing;
  }
}

/**
 * Makes a BullMQ Worker's main loop look for jobs again now, as its own resume() does: while it has
 * as many jobs as its concurrency it waits for one of them to end, and a concurrency raised
 * meanwhile is seen only then. (A settled entry in its fetch queue ends that wait; the loop finds no
 * job in it and goes round, fetching up to the new concurrency. BullMQ's `mainLoopQueue` is not
 * public: checked against the installed version by the queue suites, which stall without it.)
 */
function wakeMainLoop(worker: Worker): void {
  (worker as unknown as { mainLoopQueue?: { add(promise: Promise<unknown>): void } | null }).mainLoopQueue?.add(Promise.resolve());
}
