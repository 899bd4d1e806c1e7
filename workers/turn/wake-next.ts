/**
 * What a job leaves queued when it lets go of a thread: the thread's next queued run, woken when
 * a run ends; the takeover of a run this worker handed back on shutdown; and, for a job that found
 * its run already finished, the run's last event published again. A lost wake-up or takeover is
 * repaired by the sweeper.
 */
import type { Logger } from 'pino';
import { lastRunEvent, type WriteFence } from '../../db/events.repository.js';
import { nextQueuedRun, type Claim } from '../../db/runs.repository.js';
import { enqueueTakeover, type TurnContext, type TurnJob } from '../../queue/turn-queue.js';
import type { TurnDeps } from './deps.js';

/**
 * Starts the thread's next queued turn, if any: the one the run's last write found, else (the run
 * did not get that far) looked up. A lost wake-up is repaired by the sweeper.
 */
export async function wakeNext(deps: TurnDeps, threadId: string, log: Logger, found?: { runId?: string }): Promise<void> {
  try {
    const next = found ? found.runId : await nextQueuedRun(deps.db, threadId);
    if (next) await deps.queue.enqueue({ runId: next, threadId }, { wake: true });
  } catch (error) {
    log.warn({ err: error }, 'could not wake the next turn; the sweeper will');
  }
}

/** Queues the takeover of a run this worker released; if that fails the heartbeat sweeper will. */
export async function handBack(deps: TurnDeps, job: TurnJob, fence: WriteFence, log: Logger): Promise<void> {
  try {
    await enqueueTakeover(deps.queue, job, fence.attempt);
    log.info('run released on shutdown; another worker takes it over');
  } catch (error) {
    log.warn({ err: error }, 'run released on shutdown but its takeover could not be queued; the sweeper will');
  }
}

/**
 * A job that found nothing to start. A re-delivery of a run that has finished meanwhile (its last
 * write committed, but the answer was lost and the retries ran out) publishes the run's last event
 * again: otherwise live followers would never hear the end of the turn. And a run that ended (a
 * queued run cancelled, say) may leave the thread's next queued run waiting for a wake-up: it gets
 * one.
 */
export async function afterUnclaimed(deps: TurnDeps, job: TurnJob, ctx: TurnContext, claim: Exclude<Claim, { kind: 'claimed' }>): Promise<void> {
  if (claim.kind !== 'gone' || !claim.status || claim.status === 'queued' || claim.status === 'running') return;
  try {
    if (ctx.takeover) {
      const last = await lastRunEvent(deps.db, job.threadId, job.runId);
      if (last) await deps.events.publish(job.threadId, [last]);
    }
    await wakeNext(deps, job.threadId, deps.log);
  } catch (error) {
    deps.log.warn({ err: error, run_id: job.runId }, 'after a finished run: republish or wake-up failed; the sweeper will wake');
  }
}
