/**
 * Recovery at the start of a single node (the embedded store and bus): it owns every run, so a run
 * still marked running was cut off by the node's last shutdown or crash. Each ends failed
 * (`worker_lost`) with the text streamed so far and its one `agent_completed`; the sweep that runs
 * next at start then starts the threads' queued runs. (A fleet needs none of this: its sweepers
 * take over runs whose heartbeat went stale.)
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { failAbandonedRun, runningRunIds } from '../db/run-liveness.repository.js';
import type { Database } from '../db/schema.js';
import { RunErrorCodes } from '../protocol/codes.js';

export async function failOrphanedRuns(db: Kysely<Database>, log: Logger): Promise<number> {
  let failed = 0;
  for (const runId of await runningRunIds(db)) {
    const ended = await failAbandonedRun(db, runId, 'worker_lost', RunErrorCodes.worker_lost);
    if (!ended) continue;
    failed += 1;
    log.warn({ run_id: runId, thread_id: ended.threadId }, 'run interrupted by the last shutdown marked failed');
  }
  return failed;
}
