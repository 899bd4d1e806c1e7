/**
 * Whether a run's worker is still there, and what happens to a run whose worker is not. A worker
 * beats the heartbeat of every run it holds; the sweeper finds runs whose beat is stale (their
 * worker died or was cut off: taken over or ended) and queued runs whose wake-up was lost; an
 * embedded node at start-up ends the runs its previous process left running. A waiting run
 * (waiting_since set: no worker holds it until its answer) is none of these: every query here
 * leaves it alone.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { newId } from './ids.js';
import { appendEvent, type WriteFence } from './events.repository.js';

/** True when the run's heartbeat (or, before the first beat, its start) is older than `staleMs`. */
function heartbeatOlderThan(staleMs: number) {
  return sql<boolean>`coalesce(heartbeat_at, started_at, created_at) < clock_timestamp() - make_interval(secs => ${staleMs / 1000})`;
}

/**
 * Refreshes the heartbeat of the runs this worker holds (each fenced by its attempt). Returns how
 * many runs it beat (a run finishing right now is skipped, so this can be fewer than asked).
 */
export async function beatRuns(db: Kysely<Database>, fences: WriteFence[]): Promise<number> {
  if (fences.length === 0) return 0;
  // Rows locked in id order, and a run a batch is finishing right now skipped (its beat no longer
  // matters): otherwise the beat and a batch that finishes several runs could deadlock, and the
  // whole event log of the process would wait out deadlock_timeout. The held list is unnested in
  // FROM and only `r` is locked: a row lock cannot apply to a set-returning function's rows.
  const result = await sql`
    update runs set heartbeat_at = clock_timestamp()
    where id in (
      select r.id from runs r
      join unnest(${fences.map((f) => f.runId)}::text[], ${fences.map((f) => f.attempt)}::int[]) as held(id, attempt)
        on r.id = held.id and r.attempt = held.attempt
      where r.status = 'running'
      order by r.id
      for no key update of r skip locked
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Running runs (not waiting) whose heartbeat is older than `staleMs`: their worker is gone or cut off. */
export async function staleRuns(db: Kysely<Database>, staleMs: number, limit = 100): Promise<Array<{ id: string; thread_id: string; attempt: number }>> {
  const result = await sql<{ id: string; thread_id: string; attempt: number }>`
    select id, thread_id, attempt from runs
    where status = 'running' and waiting_since is null
      and ${heartbeatOlderThan(staleMs)}
    order by created_at
    limit ${limit}`.execute(db);
  return result.rows;
}

/**
 * Queued runs older than `olderThanMs` at the head of a thread with nothing running: their job
 * was never added (Redis down at send time) or their wake-up was lost. Safe to enqueue again.
 */
export async function strandedRuns(db: Kysely<Database>, olderThanMs: number, limit = 100): Promise<Array<{ id: string; thread_id: string }>> {
  const result = await sql<{ id: string; thread_id: string }>`
    select distinct on (r.thread_id) r.id, r.thread_id
    from runs r
    where r.status = 'queued'
      and r.created_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000})
      and not exists (select 1 from runs b where b.thread_id = r.thread_id and b.status = 'running')
    order by r.thread_id, r.created_at, r.id
    limit ${limit}`.execute(db);
  return result.rows;
}

/**
 * Ends a run that no worker will finish (its worker died): status failed with `code`, the text
 * streamed so far kept as the assistant message, and its one `agent_completed`, in one
 * transaction. Returns the stored event, or undefined when the run was not running (or waits).
 */
export async function failAbandonedRun(
  db: Kysely<Database>,
  runId: string,
  code: string,
  message: string,
  only: { attempt?: number; staleMs?: number } = {},
) {
  return db.transaction().execute(async (trx) => {
    // The thread's row first, as every writer of its runs and events takes it (no deadlock).
    const owner = await trx.selectFrom('runs').select('thread_id').where('id', '=', runId).executeTakeFirst();
    if (!owner) return undefined;
    await trx.selectFrom('threads').select('id').where('id', '=', owner.thread_id).forNoKeyUpdate().execute();
    const run = await trx
      .updateTable('runs')
      .set({ status: 'failed', finished_at: sql`clock_timestamp()`, error: JSON.stringify({ code, message }) })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .where('waiting_since', 'is', null)
      // The sweeper's view may be old: only the attempt it saw, and only if still stale.
      .$if(only.attempt !== undefined, (q) => q.where('attempt', '=', only.attempt!))
      .$if(only.staleMs !== undefined, (q) => q.where(heartbeatOlderThan(only.staleMs!)))
      .returning(['thread_id', 'assistant_message_id'])
      .executeTakeFirst();
    if (!run) return undefined;
    const messageId = run.assistant_message_id ?? newId('m');
    const deltas = await trx
      .selectFrom('events')
      .select(sql<string>`coalesce(string_agg(payload->>'delta', '' order by seq), '')`.as('text'))
      .where('thread_id', '=', run.thread_id)
      .where('run_id', '=', runId)
      .where('type', '=', 'message_delta')
      .where(sql`payload->>'message_id'`, '=', messageId)
      .executeTakeFirst();
    const content = deltas?.text ?? '';
    await trx
      .insertInto('messages')
      .values({ id: messageId, thread_id: run.thread_id, run_id: runId, role: 'assistant', content, tool_calls: null, tool_call_id: null, client_message_id: null })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    return {
      threadId: run.thread_id,
      event: await appendEvent(trx, run.thread_id, {
        type: 'agent_completed',
        run_id: runId,
        payload: {
          status: 'failed',
          message: { id: messageId, role: 'assistant', content, run_id: runId },
          error: { code: code as 'worker_lost', message },
        },
      }),
    };
  });
}

/** Ids of runs marked running and not waiting (an embedded node at start-up: all of them are orphans). */
export async function runningRunIds(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('runs').select('id').where('status', '=', 'running').where('waiting_since', 'is', null).execute();
  return rows.map((r) => r.id);
}
