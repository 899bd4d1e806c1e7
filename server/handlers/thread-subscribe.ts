import { findOwnedThread } from '../../db/threads.repository.js';
import { RequestError, type FrameHandler } from './context.js';

/** Acks with the thread's current last_seq, then replays seq > after_seq and goes live. */
export const threadSubscribe: FrameHandler<'thread.subscribe'> = async (connection, frame, services) => {
  const { thread_id, after_seq = 0 } = frame.payload;
  const thread = await findOwnedThread(services.db, thread_id, connection.owner);
  // Someone else's thread and a missing one look the same: no existence oracle.
  if (!thread) throw new RequestError('not_found', `Thread ${thread_id} was not found.`);
  connection.sendFrame('ack', { thread_id, last_seq: thread.last_seq }, frame.id);
  await services.fanout.follow(connection, thread_id, after_seq);
};

export const threadUnsubscribe: FrameHandler<'thread.unsubscribe'> = async (connection, frame, services) => {
  const { thread_id } = frame.payload;
  await services.fanout.unfollow(connection, thread_id);
  connection.sendFrame('ack', { thread_id }, frame.id);
};
