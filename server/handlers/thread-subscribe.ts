import { CloseCodes } from '../../protocol/codes.js';
import type { Connection } from '../ws/connection.js';
import type { FrameHandler, GatewayServices } from './context.js';
import { RequestError } from '../errors.js';

/**
 * Acks with the thread's current last_seq, then replays seq > after_seq and goes live. The
 * handler returns once the socket is registered as a follower (the next frame, an unsubscribe
 * say, sees it); the replay goes on behind it, paced by the socket.
 */
export const threadSubscribe: FrameHandler<'thread.subscribe'> = async (connection, frame, services) => {
  const { thread_id, after_seq = 0 } = frame.payload;
  checkSubscriptionRoom(connection, thread_id, services);
  const thread = await services.reads.ownedThread(thread_id, connection.owner);
  // Someone else's thread and a missing one look the same: no existence oracle.
  if (!thread) throw new RequestError('not_found', `Thread ${thread_id} was not found.`);
  if (after_seq > thread.last_seq) {
    throw new RequestError(
      'seq_out_of_range',
      `Thread ${thread_id} has no events after seq ${thread.last_seq}; after_seq ${after_seq} is ahead of it. Drop what you hold of the thread and subscribe again from 0.`,
      undefined,
      { last_seq: thread.last_seq },
    );
  }
  connection.sendFrame('ack', { thread_id, last_seq: thread.last_seq }, frame.id);
  void services.fanout.follow(connection, thread_id, after_seq).catch((error) => followFailed(connection, thread_id, error));
};

/** MAX_SUBSCRIPTIONS_PER_CONNECTION: following one more thread is refused (`limit_exceeded`). */
export function checkSubscriptionRoom(connection: Connection, threadId: string, services: GatewayServices): void {
  const limit = services.limits.maxSubscriptions;
  if (connection.threadCount < limit || connection.threads.has(threadId)) return;
  throw new RequestError('limit_exceeded', `This connection follows ${limit} threads, the most it may; unsubscribe from one first (MAX_SUBSCRIPTIONS_PER_CONNECTION).`);
}

/**
 * The replay after an ack failed (the database went away mid-replay): the request was answered, so
 * an error frame would be a second answer a client may ignore, and the socket would then miss
 * events without knowing. It is closed instead (1011): the client reconnects and resumes by seq.
 */
export function followFailed(connection: Connection, threadId: string, error: unknown): void {
  connection.log.warn({ err: error, thread_id: threadId }, 'could not replay the thread; closing so the client resumes');
  connection.close(CloseCodes.internal_error, 'could not replay the thread; reconnect and resume');
}

/**
 * Takes effect at once (the fan-out drops the follower synchronously) and is acked at once: the
 * broker channel is let go in the background, so a broker that is down cannot hold up the
 * connection's next frames.
 */
export const threadUnsubscribe: FrameHandler<'thread.unsubscribe'> = (connection, frame, services) => {
  const { thread_id } = frame.payload;
  void services.fanout.unfollow(connection, thread_id).catch((error) => connection.log.warn({ err: error, thread_id }, 'releasing the thread channel failed'));
  connection.sendFrame('ack', { thread_id }, frame.id);
};
