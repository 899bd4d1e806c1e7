/**
 * The turn a stream joins when its client names only the thread (the AI SDK's resume, an AG-UI
 * client coming back): the thread's running run (one that waits for a person or a client still
 * counts: it is running, parked), else the oldest queued one, the next to run. Undefined when
 * nothing is active.
 */
import type { Kysely } from 'kysely';
import { runEventsAfter } from '../../db/events.repository.js';
import { nextQueuedRun, runningRunsOfThread } from '../../db/runs.repository.js';
import type { Database } from '../../db/schema.js';

export interface ActiveTurn {
  runId: string;
  /**
   * The seq before the run's first event (its user message's `message_created`): a reader after it
   * sees the whole run, from its start.
   */
  afterSeq: number;
}

export async function activeTurn(db: Kysely<Database>, threadId: string): Promise<ActiveTurn | undefined> {
  // The claim lets one run of a thread run at a time, and a thread's queued runs start oldest first.
  const runId = (await runningRunsOfThread(db, threadId))[0] ?? (await nextQueuedRun(db, threadId));
  if (!runId) return undefined;
  const afterSeq = await runStart(db, threadId, runId);
  return afterSeq === undefined ? undefined : { runId, afterSeq };
}

/** The seq before the run's first event, or undefined when the run has none on the thread (it is gone). */
export async function runStart(db: Kysely<Database>, threadId: string, runId: string): Promise<number | undefined> {
  // Every run is recorded with its message_created in one transaction.
  const [first] = await runEventsAfter(db, threadId, runId, 0, 1);
  return first ? first.seq - 1 : undefined;
}
