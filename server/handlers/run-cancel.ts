import { threadChannel } from '../../broker/index.js';
import { cancelQueuedRun, findOwnedRun } from '../../db/runs.repository.js';
import { encodeBrokerEvent } from '../thread-fanout.js';
import { RequestError, type FrameHandler } from './context.js';

/** Broker channel on which every worker listens for runs to abort. */
export const RUN_CANCEL_CHANNEL = 'runs:cancel';

/**
 * A queued run is cancelled here and now; a running one is signalled to whichever worker holds it
 * (broadcast, since only that worker can abort its stream). Only the thread's owner may cancel.
 */
export const runCancel: FrameHandler<'run.cancel'> = async (connection, frame, services) => {
  const { run_id } = frame.payload;
  const run = await findOwnedRun(services.db, run_id, connection.owner);
  if (!run) throw new RequestError('not_found', `Run ${run_id} was not found.`);
  if (run.status === 'queued') {
    const event = await cancelQueuedRun(services.db, run_id);
    if (event) {
      connection.sendFrame('ack', { run_id, status: 'cancelled' }, frame.id);
      await services.broker.publish(threadChannel(run.thread_id), encodeBrokerEvent(event.seq, event.frame));
      return;
    }
    // It started meanwhile: cancel it as a running run.
  } else if (run.status !== 'running') {
    throw new RequestError('conflict', `Run ${run_id} has already finished (${run.status}); there is nothing to cancel.`);
  }
  await services.broker.publish(RUN_CANCEL_CHANNEL, run_id);
  connection.sendFrame('ack', { run_id, status: 'cancelling' }, frame.id);
};
