/**
 * The hand-off from the gateway to the workers. A job only names a run; the run itself (and the
 * per-thread order of runs) lives in the database, so a lost or repeated job is harmless: the
 * processor claims the run in Postgres before doing anything.
 */
export interface TurnJob {
  runId: string;
  threadId: string;
  /**
   * A takeover job: the run is marked running by an attempt that is gone (its heartbeat went stale)
   * or that released it on shutdown. Only that attempt is replaced, and with `staleMs` only if its
   * heartbeat is still stale when the job runs.
   */
  takeover?: { fromAttempt: number; staleMs?: number };
}

export interface TurnContext {
  /** Aborted when the run is cancelled or this worker is shutting down. */
  signal: AbortSignal;
  /**
   * This delivery replaces an attempt that died (the queue re-delivered the run's own job after
   * its worker stopped or its attempt threw): the processor may take over a run still marked
   * running. Wake-ups and first deliveries never take over.
   */
  takeover: boolean;
  /** When this job was created (ms since the epoch), for the queue-wait metric. */
  enqueuedAt?: number;
  /**
   * The job's id, the same on every delivery of it. The claim stores it with the attempt
   * (runs.claimed_by), and a re-delivery takes over only the attempt an earlier delivery of this
   * job claimed, never a newer one that replaced it meanwhile (a sweeper's takeover), which is alive.
   */
  jobId: string;
}

/**
 * Queues the takeover of a run from attempt `fromAttempt` (released on shutdown, or gone stale).
 * Everyone asking for the same takeover uses the same dedupe key, so it is queued once.
 */
export function enqueueTakeover(queue: TurnQueue, run: { runId: string; threadId: string }, fromAttempt: number, staleMs?: number): Promise<void> {
  return queue.enqueue(
    { runId: run.runId, threadId: run.threadId, takeover: staleMs === undefined ? { fromAttempt } : { fromAttempt, staleMs } },
    { key: `takeover-${fromAttempt}` },
  );
}

/**
 * Queues the resume of a waiting run once its answer is stored (or its wait expired). The key
 * names the attempt the run parked with: every park moves the attempt on, so a later wait of the
 * same run gets a job of its own, while everyone resuming this one (two answers racing, the
 * sweep's expiry) asks for the same job. Only one job claims a waiting run in any case.
 */
export function enqueueResume(queue: TurnQueue, run: { runId: string; threadId: string }, parkedAttempt: number): Promise<void> {
  return queue.enqueue({ runId: run.runId, threadId: run.threadId }, { key: `resume-${parkedAttempt}` });
}

export interface EnqueueOptions {
  /** Always add a job, even if the run has one pending (wake-ups, the sweeper). */
  wake?: boolean;
  /**
   * Deduplicates on (run, key) instead of the run: a second enqueue with the same key while the
   * first job exists is ignored (several sweepers asking for the same takeover).
   */
  key?: string;
}

/** The one function that runs a turn, whichever queue delivers it. */
export type TurnProcessor = (job: TurnJob, ctx: TurnContext) => Promise<void>;

export interface TurnQueue {
  /**
   * Schedules the run. The first enqueue of a run is idempotent (a run that already has a pending
   * job is not added twice); `wake: true` always adds a job, for wake-ups and the sweeper, since a
   * job that finds its run already claimed ends harmlessly.
   */
  enqueue(job: TurnJob, options?: EnqueueOptions): Promise<void>;
  /** Starts consuming jobs in this process with at most `concurrency` turns at once. */
  startWorker(processor: TurnProcessor, concurrency: number): Promise<void>;
  /**
   * Stops taking new jobs; resolves when the active ones have returned (the worker's grace period
   * makes sure they do). Enqueueing still works. Safe to call twice, and before startWorker.
   */
  stopConsuming(): Promise<void>;
  /** Stops consuming (waits for active turns up to the implementation's grace), then disconnects. Safe to call twice. */
  close(): Promise<void>;
}
