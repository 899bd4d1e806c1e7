/**
 * Where the AG-UI view must start translating to stand at a seq: the view's state at a point of a
 * thread is the run open there (started, or ended on a wait, and not completed), so a stream that
 * starts after `seq` translates that run's events from its agent_started. Found by reading the log
 * backwards from `seq` to that agent_started, or to the completion of a run before it (nothing was
 * open). A run cancelled while queued has no state and is passed over.
 */
import type { Kysely } from 'kysely';
import { listEventsBefore } from '../../db/event-reads.repository.js';
import { runEventsAfter } from '../../db/events.repository.js';
import type { Database } from '../../db/schema.js';
import type { ThreadEvent } from '../../protocol/frames.js';

const PAGE = 200;

export interface ScanResult {
  /** The newest seq at or before the point (0 for an empty thread). */
  last: number;
  /** The agent_started of the run whose state the point needs: open there, or ending at it. */
  openedAt?: number;
  /** That run is still open after the point (not ended by the event at the point). */
  open: boolean;
  /** The events from that agent_started (or from `last`, when none was open) to `last`, oldest first. */
  events: ThreadEvent[];
}

/** Scans back from `seq` (inclusive; the thread's end when undefined). */
export async function scanBack(db: Kysely<Database>, threadId: string, seq: number | undefined): Promise<ScanResult> {
  const tail: ThreadEvent[] = [];
  let before = seq === undefined ? undefined : seq + 1;
  let last: number | undefined;
  for (;;) {
    const page = await listEventsBefore(db, threadId, before, PAGE);
    const events = page.events as unknown as ThreadEvent[];
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!;
      const at = event.payload.seq;
      last ??= at;
      tail.push(event);
      const runId = event.payload.run_id;
      if (event.type === 'agent_started') return done(last, tail, at, tail[0]!.type !== 'agent_completed' || tail[0]!.payload.run_id !== runId);
      // A completion before the point: nothing was open after it (unless it ended a run that never
      // started). A completion at the point itself needs its run's state: the scan goes on.
      if (event.type === 'agent_completed' && runId && at < last && (await started(db, threadId, runId))) {
        return done(last, tail.slice(0, 1), undefined);
      }
    }
    if (!page.hasMore || events.length === 0) return done(last ?? 0, tail.slice(0, 1), undefined);
    before = events[0]!.payload.seq;
  }
}

function done(last: number, newestFirst: ThreadEvent[], openedAt: number | undefined, open = false): ScanResult {
  return { last, ...(openedAt === undefined ? {} : { openedAt }), open, events: newestFirst.reverse() };
}

/** Whether the run got past its queue (a run cancelled while queued has only its user message and its completion). */
async function started(db: Kysely<Database>, threadId: string, runId: string): Promise<boolean> {
  const first = await runEventsAfter(db, threadId, runId, 0, 2);
  return first[1]?.type !== 'agent_completed';
}
