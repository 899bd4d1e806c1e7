import { RUN_CANCEL_CHANNEL } from '../../broker/index.js';
import { cancelQueuedRun, findOwnedRun } from '../../db/runs.repository.js';
import type { Owner } from '../../db/owner.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';

/**
 * A queued run is cancelled here and now; a running one is signalled to whichever worker holds it
 * (broadcast, since only that worker can abort its stream). Only the thread's owner may cancel.
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
  await services.broker.publish(RUN_CANCEL_CHANNEL, runId);
  return { run_id: runId, status: 'cancelling' as const };
}
