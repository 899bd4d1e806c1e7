import { threadChannel } from '../../broker/index.js';
import { recordTurn, TurnRejected } from '../../db/turns.repository.js';
import { encodeBrokerEvent } from '../thread-fanout.js';
import { RequestError, type FrameHandler } from './context.js';

/**
 * Stores the user's message and a queued run in one transaction, acks with the ids, makes the
 * socket follow the thread (from the new message on), publishes `message_created` and enqueues the
 * turn. A repeated client_message_id gets the first send's ack and nothing new is stored.
 */
export const messageSend: FrameHandler<'message.send'> = async (connection, frame, services) => {
  const { content, thread_id, agent_id, client_message_id } = frame.payload;
  // Postgres text cannot hold NUL; refuse it here rather than fail in the store.
  if (content.includes('\u0000')) throw new RequestError('invalid_frame', 'payload.content must not contain NUL (\\u0000) characters');
  let turn;
  try {
    turn = await recordTurn(services.db, connection.owner, {
      content,
      threadId: thread_id,
      agentId: agent_id,
      clientMessageId: client_message_id,
    });
  } catch (error) {
    if (error instanceof TurnRejected) throw new RequestError(error.code, error.message);
    throw error;
  }
  const log = connection.log.child({ thread_id: turn.threadId, run_id: turn.runId });
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
    // Follow from just before this message, so the socket sees it and everything after.
    void services.fanout
      .follow(connection, turn.threadId, Math.max(0, turn.fromSeq - 1))
      .catch((error) => log.warn({ err: error }, 'could not follow thread after send'));
  }
  if (turn.deduplicated || !turn.event) return;
  try {
    await services.broker.publish(threadChannel(turn.threadId), encodeBrokerEvent(turn.event.seq, turn.event.frame));
  } catch (error) {
    // Stored already: followers on other gateways recover it from the log on their next event.
    log.warn({ err: error }, 'message_created not published');
  }
  try {
    await services.queue.enqueue({ runId: turn.runId, threadId: turn.threadId });
  } catch (error) {
    // The run is recorded as queued; the worker's sweeper enqueues runs that have no job.
    log.warn({ err: error }, 'turn not enqueued; the sweeper will pick it up');
  }
};
