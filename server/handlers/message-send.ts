import { findOwnedThread } from '../../db/threads.repository.js';
import { sendMessage } from '../operations/messages.js';
import type { FrameHandler } from './context.js';
import { checkSubscriptionRoom, followFailed } from './thread-subscribe.js';

/**
 * Acks with the ids; the socket follows the thread so the client sees its message and the whole
 * turn. Sent to a thread the socket does not follow yet, the socket starts following before the
 * message is stored (the starting point is settled once it is): every message this socket sends
 * there meanwhile, also several at once whichever is acked first, comes through the stream. A
 * retried send (same client_message_id) replays the original turn.
 */
export const messageSend: FrameHandler<'message.send'> = async (connection, frame, services) => {
  const { thread_id } = frame.payload;
  // Following one more thread must fit under MAX_SUBSCRIPTIONS_PER_CONNECTION (a new thread too).
  checkSubscriptionRoom(connection, thread_id ?? '', services);
  let settle: ((afterSeq: number) => void) | undefined;
  let threadEnd = 0;
  if (thread_id && !services.fanout.isFollowing(connection, thread_id)) {
    const thread = await findOwnedThread(services.db, thread_id, connection.owner);
    // A missing or foreign thread is refused by sendMessage below, with the usual not_found.
    if (thread && !services.fanout.isFollowing(connection, thread_id)) {
      threadEnd = thread.last_seq;
      follow(thread_id, new Promise<number>((resolve) => (settle = resolve)));
    }
  }
  let turn;
  try {
    turn = await sendMessage(services, connection.owner, frame.payload);
  } catch (error) {
    settle?.(threadEnd);
    throw error;
  }
  // From the thread's end as it was before this message, or from the original message of a retry.
  settle?.(Math.min(threadEnd, turn.fromSeq - 1));
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
  if (!services.fanout.isFollowing(connection, turn.threadId)) follow(turn.threadId, Math.max(0, turn.fromSeq - 1));

  function follow(threadId: string, afterSeq: number | Promise<number>): void {
    void services.fanout.follow(connection, threadId, afterSeq).catch((error) => followFailed(connection, threadId, error));
  }
};
