/**
 * Ending a waiting run from outside (run.cancel, an interrupting message): no worker holds it, so
 * whoever cancels it writes its end, as cancel_queued_run does for a queued run.
 */
import { sql, type Kysely } from 'kysely';
import { appendEvent, type StoredEvent } from './events.repository.js';
import { newId } from './ids.js';
import { nextQueuedRun } from './runs.repository.js';
import type { Database } from './schema.js';
import { resolve } from './tool-wait-answers.repository.js';
import { streamedText } from './turn-state.repository.js';

export interface CancelledWait {
  threadId: string;
  /** approval_resolved (cancelled) of each pending approval, then agent_completed: publish them. */
  events: StoredEvent[];
  /** The thread's next queued run, to wake. */
  nextRunId?: string;
}

/**
 * Cancels the run if it is waiting: its pending waits cancelled (approval_resolved `cancelled`
 * for approvals), its answer so far stored as the assistant message, and its one agent_completed
 * (status cancelled), in one transaction under the thread's lock. Undefined when the run is not
 * waiting (a resume job claimed it first: then it is cancelled as a running run).
 */
export async function cancelWaitingRun(db: Kysely<Database>, runId: string): Promise<CancelledWait | undefined> {
  const found = await db.selectFrom('runs').select('thread_id').where('id', '=', runId).executeTakeFirst();
  if (!found) return undefined;
  return db.transaction().execute(async (trx) => {
    const thread = await trx.selectFrom('threads').select('id').where('id', '=', found.thread_id).forNoKeyUpdate().executeTakeFirst();
    if (!thread) return undefined;
    const run = await trx
      .updateTable('runs')
      .set({ status: 'cancelled', finished_at: sql`clock_timestamp()`, waiting_since: null })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .where('waiting_since', 'is not', null)
      .returning(['thread_id', 'assistant_message_id', 'usage'])
      .executeTakeFirst();
    if (!run) return undefined;
    const events: StoredEvent[] = [];
    const waits = await trx.selectFrom('tool_waits').selectAll().where('run_id', '=', runId).where('status', '=', 'pending').orderBy('created_at').execute();
    for (const wait of waits) events.push(...(await resolve(trx, wait, 'cancelled')).events);
    const messageId = run.assistant_message_id ?? newId('m');
    const content = await streamedText(trx, run.thread_id, runId, messageId);
    await trx
      .insertInto('messages')
      .values({ id: messageId, thread_id: run.thread_id, run_id: runId, role: 'assistant', content, tool_calls: null, tool_call_id: null, client_message_id: null })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    events.push(await appendEvent(trx, run.thread_id, {
      type: 'agent_completed',
      run_id: runId,
      payload: {
        status: 'cancelled',
        message: { id: messageId, role: 'assistant', content, run_id: runId },
        ...(run.usage ? { usage: { ...run.usage, total_tokens: run.usage.prompt_tokens + run.usage.completion_tokens } } : {}),
      },
    }));
    const nextRunId = await nextQueuedRun(trx, run.thread_id);
    return { threadId: run.thread_id, events, ...(nextRunId ? { nextRunId } : {}) };
  });
}
