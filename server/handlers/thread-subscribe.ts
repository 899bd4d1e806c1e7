import { findOwnedThread } from '../../db/threads.repository.js';
import { CloseCodes } from '../../protocol/codes.js';
import type { Connection } from '../connection.js';
import { type FrameHandler } from './context.js';
import { RequestError } from '../errors.js';

/** Acks with the thread's current last_seq, then replays seq > after_seq and goes live. */
export const threadSubscribe: FrameHandler<'thread.subscribe'> = async (connection, frame, services) => {
  const { thread_id, after_seq = 0 } = frame.payload;
  const thread = await findOwnedThread(services.db, thread_id, connection.owner);
  // Someone else's thread and a missing one look the same: no existence oracle.
  if (!thread) throw new RequestError('not_found', `Thread ${thread_id} was not found.`);
  connection.sendFrame('ack', { thread_id, last_seq: thread.last_seq }, frame.id);
  await services.fanout.follow(connection, thread_id, after_seq).catch((error) => followFailed(connection, thread_id, error));
};

/**
 * The replay after an ack failed (the database went away mid-replay): the request was answered, so
 * an error frame would be a second answer a client may ignore, and the socket would then miss
 * events without knowing. It is closed instead (1011): the client reconnects and resumes by seq.
 */
export function followFailed(connection: Connection, threadId: string, error: unknown): void {
  connection.log.warn({ err: error, thread_id: threadId }, 'could not replay the thread; closing so the client resumes');
  connection.close(CloseCodes.internal_error, 'could not replay the thread; reconnect and resume');
}

export const threadUnsubscribe: FrameHandler<'thread.unsubscribe'> = async (connection, frame, services) => {
  const { thread_id } = frame.payload;
  await services.fanout.unfollow(connection, thread_id);
  connection.sendFrame('ack', { thread_id }, frame.id);
};
