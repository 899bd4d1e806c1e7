/**
 * A worker process's part: consume turns from the queue, listen for cancellations, and sweep
 * queued runs whose job was lost.
 */
import { strandedRuns } from '../db/runs.repository.js';
import { RUN_CANCEL_CHANNEL } from '../broker/index.js';
import { createTurnProcessor, type TurnDeps } from './turn-processor.js';

/** The turn processor's dependencies (less what the worker builds itself), plus the worker's own. */
export interface WorkerOptions extends Omit<TurnDeps, 'activeRuns'> {
  concurrency: number;
  /** How often to look for stranded queued runs. @defaultValue 5000 */
  sweepIntervalMs?: number;
  /** A queued run this old with nothing running on its thread is re-enqueued. @defaultValue 10000 */
  strandedAfterMs?: number;
  /** Re-enqueue every stranded queued run at once on start (a single node after a restart). */
  sweepOnStart?: boolean;
}

export interface TurnWorker {
  /** Runs in flight in this process. */
  activeCount(): number;
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<TurnWorker> {
  const { log } = options;
  const activeRuns = new Map<string, AbortController>();
  const unsubscribeCancel = await options.broker.subscribe(RUN_CANCEL_CHANNEL, (runId) => {
    activeRuns.get(runId)?.abort(new Error('cancelled by the user'));
  });
  const processor = createTurnProcessor({ ...options, activeRuns });
  await options.queue.startWorker(processor, options.concurrency);

  const sweep = async (olderThanMs = options.strandedAfterMs ?? 10_000) => {
    try {
      for (const run of await strandedRuns(options.db, olderThanMs)) {
        log.info({ run_id: run.id, thread_id: run.thread_id }, 're-enqueuing a stranded run');
        await options.queue.enqueue({ runId: run.id, threadId: run.thread_id }, { wake: true });
      }
    } catch (error) {
      log.warn({ err: error }, 'sweep failed; will retry');
    }
  };
  if (options.sweepOnStart) await sweep(0);
  const timer = setInterval(() => void sweep(), options.sweepIntervalMs ?? 5_000);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    activeCount: () => activeRuns.size,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        await unsubscribeCancel().catch(() => {});
      })();
      return closing;
    },
  };
}
