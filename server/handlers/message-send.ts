import { sendMessage } from '../operations/messages.js';
import type { FrameHandler } from './context.js';

/**
 * Acks with the ids, then makes the socket follow the thread from the new message on (replaying
 * it from the log), so the client sees its message and the whole turn.
 */
export const messageSend: FrameHandler<'message.send'> = async (connection, frame, services) => {
  const turn = await sendMessage(services, connection.owner, frame.payload);
  connection.sendFrame(
    'ack',
    {
      thread_id: turn.threadId,
      message_id: turn.messageId,
      run_id: turn.runId,
      ...(turn.deduplicated ? { deduplicated: true } : {}),
    },
    frame.id,
  );
  if (!services.fanout.isFollowing(connection, turn.threadId)) {
    // The ack is this request's one answer; a failure to follow is logged (the client can resubscribe).
    void services.fanout
      .follow(connection, turn.threadId, Math.max(0, turn.fromSeq - 1))
      .catch((error) => connection.log.warn({ err: error, thread_id: turn.threadId }, 'could not follow thread after send'));
  }
};
