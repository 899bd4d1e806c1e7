/**
 * A thread deleted while sockets here follow it: each is sent `thread_deleted` and stops following
 * (the thread's log is gone with it, so the frame has no seq). The deletion is heard on the
 * thread's broker channel when it happens (any gateway, or REST), or found out later: by a replay
 * whose read says the thread no longer exists, or by a gap fill after a broker outage that finds
 * nothing new and no thread.
 */
import { encodeFrame } from '../ws/frame-encode.js';
import type { FanoutParts, ThreadState } from './thread-state.js';

/** Every follower of `state` is told with `frame`, then let go. */
export function tellDeleted(parts: FanoutParts, state: ThreadState, frame: string): void {
  if (!parts.isCurrent(state)) return;
  for (const connection of [...state.followers.keys()]) {
    connection.send(frame);
    void parts.unfollow(connection, state.threadId).catch((error) => parts.log.warn({ err: error }, 'unfollowing a deleted thread failed'));
  }
}

/** The thread_deleted frame for a deletion this gateway did not hear of. */
export function deletedFrame(threadId: string): string {
  return encodeFrame('thread_deleted', { thread_id: threadId, timestamp: new Date().toISOString() });
}
