/**
 * The replay half of a socket's join: every event after the socket's `after_seq`, read from the log
 * page by page and written as fast as the client takes them, while the live events that arrive
 * meanwhile wait in the follower's buffer. Once the log is read to its end the buffer is sent
 * on from there; the socket then catches up with the live stream (./live-delivery.ts).
 */
import { metrics } from '../../metrics/index.js';
import type { FanoutParts, Follower, ThreadState } from './thread-state.js';
import { deletedFrame } from './thread-deletion.js';

/** A replaying client that takes nothing from its buffer for this long is cut off (1013). */
const REPLAY_STALL_MS = 3_000;
/** Empty reads of the log while the live stream says events are missing, before going on without them. */
const MISSING_READS = 20;

/**
 * Replays the log to `follower` from its `sentSeq` and sends what was buffered meanwhile. False
 * when the follow ended during the replay (overtaken by a re-follow or an unfollow, the socket
 * closed, or the thread deleted): then nothing of it is left behind. A failed read unfollows and
 * throws.
 */
export async function replay(parts: FanoutParts, state: ThreadState, follower: Follower): Promise<boolean> {
  const { connection } = follower;
  const { threadId } = state;
  /** This follow was overtaken (re-follow, unfollow) or its socket closed: it stops, leaving nothing behind. */
  const gone = () => {
    if (state.followers.get(connection) !== follower) return true;
    if (!connection.closed) return false;
    void parts.unfollow(connection, threadId).catch(() => {});
    return true;
  };
  let replayed = 0;
  /**
   * A seq the log is known to reach (a read replica must have it: ../batched-reads.ts). None for the
   * first read, which checks with the thread's last_seq on the primary: the channel is subscribed
   * to by then, so every event published before is in the log up to there.
   */
  let stored: number | undefined;
  try {
    for (let stalled = 0; ; ) {
      if (gone()) return false;
      // Each read also says whether the thread still exists: one deleted before this gateway's
      // subscription was live (its thread_deleted went by unheard) is told now.
      const read = await parts.asRequestOf(connection, () => parts.reads.eventsAfter(threadId, follower.sentSeq, stored));
      if (gone()) return false;
      stored = Math.max(stored ?? 0, read.lastSeq);
      if (!read.threadExists) {
        connection.send(deletedFrame(threadId));
        await parts.unfollow(connection, threadId);
        return false;
      }
      const page = read.events;
      // Paced: a page is written as fast as the client takes it, never all at once.
      for (let i = 0; i < page.length; ) {
        connection.cork(() => {
          while (i < page.length && connection.hasRoom()) connection.sendReplay(page[i++]!.frame);
        });
        if (i < page.length) await connection.drained(REPLAY_STALL_MS);
        if (gone()) return false;
      }
      if (page.length > 0) follower.sentSeq = page[page.length - 1]!.seq;
      replayed += page.length;
      if (page.length === parts.reads.pageSize) continue;
      // The log is read to its end. The live events kept meanwhile follow on from it, unless the
      // first new one leaves a gap (the publishes before it were lost, e.g. while Redis was
      // down): those events are in the log (stored before published), so it is read again.
      const next = Math.min(...follower.buffer.map((e) => e.seq).filter((seq) => seq > follower.sentSeq));
      if (next === Infinity || next === follower.sentSeq + 1) break;
      stored = Math.max(stored, next - 1);
      if (page.length === 0 && ++stalled > MISSING_READS) {
        parts.log.warn({ thread_id: threadId, after_seq: follower.sentSeq, next }, 'events missing from the log; going on');
        break;
      }
      if (page.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await parts.unfollow(connection, threadId);
    throw error;
  }
  if (gone()) return false;
  connection.cork(() => {
    for (const event of follower.buffer) {
      if (event.seq > follower.sentSeq) {
        connection.send(event.frame);
        follower.sentSeq = event.seq;
      }
    }
  });
  follower.buffer = [];
  metrics.replay(replayed);
  return true;
}
