/**
 * The turn processor: the one function every queue runs for a job (BullMQ or in process). It
 * claims the run (claim.ts), holds it in the worker's ActiveRuns while the turn loop drives it
 * (turn-loop.ts), and when the job ends lets go of it: wakes the thread's next run (wake-next.ts),
 * hands a released run back for a takeover, or leaves a parked run for the job that resumes it.
 */
import { FencedError, ThreadGoneError } from '../../db/events.repository.js';
import { metrics, type TurnMetricOutcome } from '../../metrics/index.js';
import type { TurnProcessor } from '../../queue/turn-queue.js';
import { anySignal } from '../any-signal.js';
import { CircuitBreaker } from '../circuit-breaker.js';
import { claimTurn } from './claim.js';
import { DEFAULT_TOOL_TIMEOUT_MS, type ProcessorDeps, type TurnDeps } from './deps.js';
import { Released } from './outcome.js';
import { runTurn } from './turn-loop.js';
import { handBack, wakeNext } from './wake-next.js';

export function createTurnProcessor(turnDeps: TurnDeps): TurnProcessor {
  const deps: ProcessorDeps = {
    ...turnDeps,
    breaker: new CircuitBreaker({ failureThreshold: turnDeps.breakerFailures, cooldownMs: turnDeps.breakerCooldownMs }),
    toolTimeoutMs: turnDeps.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
  };
  return async (job, ctx) => {
    const start = await claimTurn(deps, job, ctx);
    if (!start) return;
    const { fence } = start;
    if (ctx.enqueuedAt !== undefined) metrics.queueWait((Date.now() - ctx.enqueuedAt) / 1000);
    const claimedAt = performance.now();
    let ended: TurnMetricOutcome = 'error';
    const log = deps.log.child({ run_id: start.runId, thread_id: start.threadId, attempt: fence.attempt });
    const handle = deps.activeRuns.register(fence);
    const signal = anySignal([ctx.signal, handle.cancel.signal, handle.stop.signal]);
    /** The run still holds its thread when this job ends (released to a takeover, or parked). */
    let holdsThread = false;
    /** Set once the run's last write returned: the thread's next queued run (undefined: none). */
    let next: { runId?: string } | undefined;
    try {
      const result = await runTurn(deps, start, handle, signal, log);
      if (result.status === 'parked') {
        // The attempt let go of the run for a later job to continue, as a released one does.
        ended = 'released';
        holdsThread = true;
      } else {
        ended = result.status;
        next = result.next;
      }
    } catch (error) {
      if (error instanceof Released) {
        ended = 'released';
        holdsThread = true;
        await handBack(deps, job, fence, log);
      } else if (error instanceof FencedError) {
        ended = 'fenced';
        log.warn('run was taken over by another attempt; this attempt stopped writing');
      } else if (error instanceof ThreadGoneError) {
        ended = 'cancelled';
        log.info('thread was deleted during the run; the run ended with it');
      } else {
        throw error;
      }
    } finally {
      metrics.turnEnded(ended, (performance.now() - claimedAt) / 1000);
      deps.activeRuns.release(handle);
      // A released run still holds its thread; the takeover wakes the next turn when it ends. So
      // does a parked one, until the job that resumes it ends it.
      if (!holdsThread) await wakeNext(deps, start.threadId, log, next);
    }
  };
}
