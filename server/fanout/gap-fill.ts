/**
 * Live events this gateway missed, read from the log. A publish can be lost (one that failed, a
 * broker blip, a Redis restart): the next live event then leaves a gap in the thread's seq, or,
 * after a broker reconnect, nothing arrives at all. Either way the events are in the log (stored
 * before published), so the gap is filled from there before anything after it is delivered: every
 * client relies on the seq order.
 */
import { baseline, type FanoutParts, type ThreadState } from './thread-state.js';
import { deletedFrame, tellDeleted } from './thread-deletion.js';
import { deliver } from './live-delivery.js';

/**
 * After the broker reconnected: whatever was published while it was cut off is recovered from the
 * log, for every thread followed here.
 */
export function resyncAll(parts: FanoutParts, states: Iterable<ThreadState>): void {
  for (const state of states) {
    state.lastSeq ??= baseline(state);
    if (state.lastSeq !== null) void fillGap(parts, state);
  }
}

/** Delivers the events after `lastSeq` from the log, then the live events held meanwhile. */
export async function fillGap(parts: FanoutParts, state: ThreadState): Promise<void> {
  if (state.filling) return;
  state.filling = true;
  const { reads } = parts;
  // Until it succeeds (the database may be restarting too): delivering the held events past a gap
  // would break the seq order every client relies on. Nothing new is written while the database
  // is down, so `held` stays small.
  for (let attempt = 0; parts.isCurrent(state); attempt++) {
    try {
      let read = 0;
      let exists: boolean;
      // How far the log is known to reach (a read replica must have it): up to the newest event
      // held, which was stored before it was published; after a reconnect (nothing held) the
      // thread's last_seq on the primary says.
      let stored = state.held.length > 0 ? Math.max(...state.held.map((e) => e.seq)) : undefined;
      for (;;) {
        const page = await reads.eventsAfter(state.threadId, state.lastSeq ?? 0, stored);
        stored = Math.max(stored ?? 0, page.lastSeq);
        exists = page.threadExists;
        for (const event of page.events) deliver(state, event.seq, event.frame);
        read += page.events.length;
        if (page.events.length < reads.pageSize) break;
      }
      // Nothing new after a reconnect: the thread may have been deleted while this gateway
      // could not hear it (its thread_deleted was published then).
      if (read === 0 && state.held.length === 0 && !exists) {
        state.filling = false;
        tellDeleted(parts, state, deletedFrame(state.threadId));
        return;
      }
      break;
    } catch (error) {
      parts.log.warn({ err: error, thread_id: state.threadId }, 'filling a gap from the log failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
    }
  }
  state.filling = false;
  const held = state.held.sort((a, b) => a.seq - b.seq);
  state.held = [];
  for (const event of held) deliver(state, event.seq, event.frame);
}
