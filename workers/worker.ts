/**
 * A worker process's part: consume turns from the queue, listen for cancellations, keep the
 * heartbeat of the runs it holds, and sweep for runs nobody drives: queued runs whose job was
 * lost, running runs whose heartbeat went stale, waiting runs (tool-wait-sweep.ts).
 */
import { nextQueuedRun } from '../db/runs.repository.js';
import { beatRuns, failAbandonedRun, staleRuns, strandedRuns } from '../db/run-liveness.repository.js';
import { pruneEventWrites } from '../db/event-writes.repository.js';
import { RUN_CANCEL_CHANNEL } from '../broker/index.js';
import { enqueueTakeover } from '../queue/turn-queue.js';
import { BackgroundTimer } from './background-task.js';
import { ActiveRuns } from './active-runs.js';
import type { TurnDeps } from './turn/deps.js';
import { createTurnProcessor } from './turn/processor.js';
import { approvalGate } from './turn/approval-gate.js';
import { sweepToolWaits } from './tool-wait-sweep.js';

/** A run is taken over at most this many times in all; then it ends failed with worker_lost. */
export const MAX_RUN_ATTEMPTS = 5;

/**
 * How long an event write's id is kept: a copy of a write held up in a cut network longer than
 * this could store its events twice (Linux gives up on a connection after ~15 minutes).
 */
export const EVENT_WRITES_KEEP_MS = 3_600_000;

/** The turn processor's dependencies (less what the worker builds itself), plus the worker's own. */
export interface WorkerOptions extends Omit<TurnDeps, 'activeRuns'> {
  concurrency: number;
  /** How often to sweep for stranded, stale and waiting runs. @defaultValue 5000 */
  sweepIntervalMs?: number;
  /** A queued run this old with nothing running on its thread (or answered, not resumed) is re-enqueued. @defaultValue 10000 */
  strandedAfterMs?: number;
  /** Re-enqueue every stranded queued run at once on start (a single node after a restart). */
  sweepOnStart?: boolean;
  /**
   * A running run whose heartbeat is this old is taken over (or failed after MAX_RUN_ATTEMPTS).
   * This worker beats every sixth of it. @defaultValue 30000
   */
  runStaleMs?: number;
  /** How often event-write ids older than EVENT_WRITES_KEEP_MS are deleted. @defaultValue 600000 */
  pruneIntervalMs?: number;
  /** On close, how long active turns may finish before they are stopped. @defaultValue 10000 */
  shutdownGraceMs?: number;
  /**
   * On close past the grace period: hand active runs back for another worker to take over (a
   * fleet), instead of ending them failed with worker_lost (a single node). @defaultValue false
   */
  releaseOnShutdown?: boolean;
}

export interface TurnWorker {
  /** Runs in flight in this process. */
  activeCount(): number;
  /**
   * Stops taking turns and lets active ones finish within the grace period; past it, releases or
   * fails them. The queue's own close comes after this.
   */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<TurnWorker> {
  const { log, db } = options;
  const runStaleMs = options.runStaleMs ?? 30_000;
  const activeRuns = new ActiveRuns();
  const unsubscribeCancel = await options.broker.subscribe(RUN_CANCEL_CHANNEL, (runId) => {
    activeRuns.cancel(runId, new Error('cancelled by the user'));
  });
  // Calls awaiting an approval or a client's result hold no worker.
  const toolGate = options.toolGate ?? approvalGate(db);
  const turnProcessor = createTurnProcessor({ ...options, activeRuns, writeRetryMs: options.writeRetryMs ?? runStaleMs, toolGate });
  let stopping = false;
  // A job the queue hands over while this worker is stopping (fetched just as it stopped
  // consuming) is given back unclaimed: the queue retries it elsewhere, and the run stays queued.
  const processor: typeof turnProcessor = async (job, ctx) => {
    if (stopping) throw new Error('this worker is stopping; the job is retried by another worker');
    return turnProcessor(job, ctx);
  };
  await options.queue.startWorker(processor, options.concurrency);

  // Beats every sixth of the stale threshold: a takeover needs five missed beats in a row.
  const heartbeat = new BackgroundTimer({
    task: 'heartbeat',
    everyMs: Math.max(200, Math.floor(runStaleMs / 6)),
    log,
    risk: `the runs this worker holds look abandoned after ${runStaleMs} ms (RUN_STALE_MS) and other workers take them over`,
    run: () => beatRuns(db, activeRuns.fences()),
  });

  const sweep = async (olderThanMs = options.strandedAfterMs ?? 10_000) => {
    await sweepToolWaits(options, olderThanMs);
    for (const run of await strandedRuns(db, olderThanMs)) {
      log.info({ run_id: run.id, thread_id: run.thread_id }, 're-enqueuing a stranded run');
      await options.queue.enqueue({ runId: run.id, threadId: run.thread_id }, { wake: true });
    }
    for (const run of await staleRuns(db, runStaleMs)) {
      if (activeRuns.holds(run.id, run.attempt)) continue; // ours, only slow to beat
      if (run.attempt < MAX_RUN_ATTEMPTS) {
        log.warn({ run_id: run.id, thread_id: run.thread_id, attempt: run.attempt }, 'run heartbeat is stale; queuing its takeover');
        await enqueueTakeover(options.queue, { runId: run.id, threadId: run.thread_id }, run.attempt, runStaleMs);
        continue;
      }
      const ended = await failAbandonedRun(db, run.id, 'worker_lost', 'The turn was interrupted too many times; send the message again.', { attempt: run.attempt, staleMs: runStaleMs });
      if (!ended) continue;
      log.warn({ run_id: run.id, thread_id: run.thread_id, attempt: run.attempt }, 'run failed after too many takeovers');
      await options.events.publish(ended.threadId, [ended.event]);
      const next = await nextQueuedRun(db, ended.threadId);
      if (next) await options.queue.enqueue({ runId: next, threadId: ended.threadId }, { wake: true });
    }
  };
  const sweepNow = () => sweep(0).catch((error: unknown) => log.warn({ err: error }, 'sweep failed; the timer retries'));
  if (options.sweepOnStart) await sweepNow();
  // Redis came back (perhaps empty): runs stored meanwhile need their jobs now, not in 10 s. A run
  // that has its job after all gets a harmless extra wake-up.
  // The queue's own connection may come back a moment later than the broker's: look twice.
  options.broker.onReconnect(() => {
    void sweepNow();
    setTimeout(() => void sweepNow(), 2_000).unref();
  });
  const sweeper = new BackgroundTimer({
    task: 'sweep',
    everyMs: options.sweepIntervalMs ?? 5_000,
    log,
    risk: 'lost jobs are not queued again, dead workers\' runs not taken over, expired waits not ended',
    run: () => sweep(),
  });

  const pruner = new BackgroundTimer({
    task: 'prune',
    everyMs: options.pruneIntervalMs ?? 600_000,
    log,
    risk: 'event-write ids pile up in the event_writes table',
    run: () => pruneEventWrites(db, EVENT_WRITES_KEEP_MS),
  });

  let closing: Promise<void> | undefined;
  return {
    activeCount: () => activeRuns.count,
    close() {
      closing ??= (async () => {
        stopping = true;
        await sweeper.stop();
        await pruner.stop();
        const graceMs = options.shutdownGraceMs ?? 10_000;
        const deadline = Date.now() + graceMs;
        // Stop taking new turns first, so the grace period only serves the ones already running.
        const stopped = options.queue.stopConsuming();
        while (activeRuns.count > 0 && Date.now() < deadline) await sleep(Math.min(100, deadline - Date.now()));
        if (activeRuns.count > 0) {
          log.warn({ runs: activeRuns.count, grace_ms: graceMs, release: !!options.releaseOnShutdown }, 'shutdown grace period over; stopping active turns');
          activeRuns.stopAll(!!options.releaseOnShutdown, new Error('worker shutting down'));
        }
        await stopped;
        await heartbeat.stop();
        await unsubscribeCancel().catch(() => {});
      })();
      return closing;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

