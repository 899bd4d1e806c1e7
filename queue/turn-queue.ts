/**
 * The hand-off from the gateway to the workers. A job only names a run; the run itself (and the
 * per-thread order of runs) lives in the database, so a lost or repeated job is harmless: the
 * processor claims the run in Postgres before doing anything.
 */
export interface TurnJob {
  runId: string;
  threadId: string;
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
}

/** The one function that runs a turn, whichever queue delivers it. */
export type TurnProcessor = (job: TurnJob, ctx: TurnContext) => Promise<void>;

export interface TurnQueue {
  /**
   * Schedules the run. The first enqueue of a run is idempotent (a run that already has a pending
   * job is not added twice); `wake: true` always adds a job, for wake-ups and the sweeper, since a
   * job that finds its run already claimed ends harmlessly.
   */
  enqueue(job: TurnJob, options?: { wake?: boolean }): Promise<void>;
  /** Starts consuming jobs in this process with at most `concurrency` turns at once. */
  startWorker(processor: TurnProcessor, concurrency: number): Promise<void>;
  /** Stops consuming (waits for active turns up to the implementation's grace), then disconnects. Safe to call twice. */
  close(): Promise<void>;
}
