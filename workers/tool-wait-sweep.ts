/**
 * The workers' sweep of waiting runs: a wait past its deadline is expired (approval_resolved
 * `expired` for an approval) and its run resumed, the model told the request expired; and a run
 * whose answer came but whose resume job was lost (the queue unreachable at answer time) is queued
 * again. Runs on every worker's sweep; two workers sweeping at once expire a wait once (under the
 * thread's lock), and only one job claims a waiting run.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/schema.js';
import { expireToolWait } from '../db/tool-wait-answers.repository.js';
import { expiredWaits, unresumedRuns } from '../db/tool-waits.repository.js';
import type { EventLog } from '../events/event-log.js';
import { enqueueResume, type TurnQueue } from '../queue/turn-queue.js';

export interface WaitSweepDeps {
  db: Kysely<Database>;
  events: EventLog;
  queue: TurnQueue;
  log: Logger;
}

export async function sweepToolWaits(deps: WaitSweepDeps, strandedAfterMs: number): Promise<void> {
  const { db, log } = deps;
  for (const wait of await expiredWaits(db)) {
    const expired = await expireToolWait(db, wait);
    if (!expired) continue;
    log.info({ run_id: wait.run_id, tool_call_id: wait.tool_call_id }, 'tool call wait expired; resuming its run');
    await deps.events.publish(expired.threadId, expired.events);
    if (expired.resume) await enqueueResume(deps.queue, { runId: wait.run_id, threadId: expired.threadId }, expired.resume.attempt);
  }
  for (const run of await unresumedRuns(db, strandedAfterMs)) {
    log.info({ run_id: run.id, thread_id: run.thread_id }, 're-enqueuing the resume of an answered run');
    // A job of its own: the first resume job may be gone for good (failed, or never added).
    await deps.queue.enqueue({ runId: run.id, threadId: run.thread_id }, { wake: true });
  }
}
