import { cancelRun } from '../operations/runs.js';
import type { FrameHandler } from './context.js';

export const runCancel: FrameHandler<'run.cancel'> = async (connection, frame, services) => {
  connection.sendFrame('ack', await cancelRun(services, connection.owner, frame.payload.run_id), frame.id);
};
