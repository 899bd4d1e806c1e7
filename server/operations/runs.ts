import { RUN_CANCEL_CHANNEL } from '../../broker/index.js';
import { cancelQueuedRun, findOwnedRun } from '../../db/runs.repository.js';
import type { Owner } from '../../db/owner.js';
import { pendingWaitsOf } from '../../db/tool-waits.repository.js';
import { cancelWaitingRun } from '../../db/waiting-runs.repository.js';
import type { RunInfo } from '../../protocol/results.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';
import { pendingView } from './tool-waits.js';

/**
 * A queued run is cancelled here and now, and so is a waiting one (no worker holds it: its waits
 * are cancelled with it); a running one is signalled to whichever worker holds it (broadcast,
 * since only that worker can abort its stream). Only the thread's owner may cancel.
 */
export async function cancelRun(services: GatewayServices, owner: Owner, runId: string) {
  const run = await findOwnedRun(services.db, runId, owner);
  if (!run) throw new RequestError('not_found', `Run ${runId} was not found.`);
  if (run.status === 'queued') {
    const event = await cancelQueuedRun(services.db, runId);
    if (event) {
      await services.events.publish(run.thread_id, [event]);
      return { run_id: runId, status: 'cancelled' as const };
    }
    // It started meanwhile: cancel it as a running run.
  } else if (run.status !== 'running') {
    throw new RequestError('conflict', `Run ${runId} has already finished (${run.status}); there is nothing to cancel.`);
  }
  if (await cancelIfWaiting(services, runId)) return { run_id: runId, status: 'cancelled' as const };
  await services.broker.publish(RUN_CANCEL_CHANNEL, runId);
  return { run_id: runId, status: 'cancelling' as const };
}

/**
 * Ends the run if it is waiting (its waits cancelled, approval_resolved and agent_completed
 * stored and published) and wakes the thread's next queued run; false when it was not waiting
 * (a worker holds it, or it has ended).
 */
export async function cancelIfWaiting(services: GatewayServices, runId: string): Promise<boolean> {
  const cancelled = await cancelWaitingRun(services.db, runId);
  if (!cancelled) return false;
  await services.events.publish(cancelled.threadId, cancelled.events);
  if (cancelled.nextRunId) {
    await services.queue.enqueue({ runId: cancelled.nextRunId, threadId: cancelled.threadId }, { wake: true })
      .catch((error: unknown) => services.log.warn({ err: error, run_id: cancelled.nextRunId }, 'next turn not woken; the sweeper will'));
  }
  return true;
}

/** The caller's run: its status (`waiting` while it waits for an answer) and the calls it waits on. */
export async function getRun(services: GatewayServices, owner: Owner, runId: string): Promise<RunInfo> {
  const run = await findOwnedRun(services.db, runId, owner);
  if (!run) throw new RequestError('not_found', `Run ${runId} was not found.`);
  const waiting = run.status === 'running' && run.waiting_since !== null;
  return {
    id: run.id,
    thread_id: run.thread_id,
    agent_id: run.agent_id,
    status: waiting ? 'waiting' : run.status,
    created_at: run.created_at.toISOString(),
    finished_at: run.finished_at ? run.finished_at.toISOString() : null,
    pending: waiting ? (await pendingWaitsOf(services.db, runId)).map(pendingView) : [],
  };
}
