import { answerToolWait } from '../operations/tool-waits.js';
import type { FrameHandler } from './context.js';

/** The owner's decision on a call the run waits on; acked with `{run_id, tool_call_id, status}`. */
export const toolApprove: FrameHandler<'tool.approve'> = async (connection, frame, services) => {
  const { run_id, tool_call_id, approved, reason } = frame.payload;
  const answer = reason === undefined ? { approved } : { approved, reason };
  connection.sendFrame('ack', { ...(await answerToolWait(services, connection.owner, { run_id, tool_call_id, answer })) }, frame.id);
};
