/**
 * Tool calls a waiting run waits on (migration 0008): an approval a person gives, or a result a
 * client sends for one of its own tools. A wait is created with the run's park
 * (turn-state.repository.ts) and read here; it is answered, expired or cancelled once
 * (tool-wait-answers.repository.ts).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { appendEvent, type StoredEvent } from './events.repository.js';
import type { Database, ToolWait, ToolWaitKind } from './schema.js';

/** A wait to create with a park. */
export interface NewToolWait {
  kind: ToolWaitKind;
  toolCallId: string;
  toolName: string;
  /** The call's arguments as the model gave them (decoded, or the raw text). */
  arguments: unknown;
  /** Seconds until it expires (the agent's approval_timeout_s). */
  timeoutS: number;
}

/** Creates the wait with its request event, in the park's transaction; undefined when it existed already. */
export async function insertToolWait(trx: Transaction<Database>, threadId: string, runId: string, wait: NewToolWait): Promise<StoredEvent | undefined> {
  const row = await trx
    .insertInto('tool_waits')
    .values({
      run_id: runId,
      tool_call_id: wait.toolCallId,
      thread_id: threadId,
      kind: wait.kind,
      tool_name: wait.toolName,
      arguments: JSON.stringify(wait.arguments ?? null),
      expires_at: sql<Date>`clock_timestamp() + make_interval(secs => ${wait.timeoutS})`,
    })
    .onConflict((oc) => oc.columns(['run_id', 'tool_call_id']).doNothing())
    .returning('expires_at')
    .executeTakeFirst();
  if (!row) return undefined;
  const payload = { tool_call_id: wait.toolCallId, tool_name: wait.toolName, arguments: wait.arguments ?? null, expires_at: new Date(row.expires_at).toISOString() };
  return appendEvent(trx, threadId, wait.kind === 'approval'
    ? { type: 'approval_requested', run_id: runId, payload }
    : { type: 'client_tool_requested', run_id: runId, payload });
}

/** The wait on this call of the run, or undefined. */
export async function findToolWait(db: Kysely<Database>, runId: string, toolCallId: string): Promise<ToolWait | undefined> {
  return db.selectFrom('tool_waits').selectAll().where('run_id', '=', runId).where('tool_call_id', '=', toolCallId).executeTakeFirst();
}

/** The run's pending waits, oldest first. */
export async function pendingWaitsOf(db: Kysely<Database>, runId: string): Promise<ToolWait[]> {
  return db.selectFrom('tool_waits').selectAll().where('run_id', '=', runId).where('status', '=', 'pending').orderBy('created_at').execute();
}

/** Pending waits past their deadline, oldest first (the workers' sweep expires them). */
export async function expiredWaits(db: Kysely<Database>, limit = 100): Promise<Array<{ run_id: string; tool_call_id: string; thread_id: string }>> {
  return db
    .selectFrom('tool_waits')
    .select(['run_id', 'tool_call_id', 'thread_id'])
    .where('status', '=', 'pending')
    .where('expires_at', '<=', sql<Date>`clock_timestamp()`)
    .orderBy('expires_at')
    .limit(limit)
    .execute();
}

/**
 * Waiting runs whose waits were all answered more than `olderThanMs` ago, after the run began to
 * wait, and that no job has resumed: their resume job was lost (the queue was unreachable when the
 * answer came). Safe to queue again: only one job claims a waiting run.
 */
export async function unresumedRuns(db: Kysely<Database>, olderThanMs: number, limit = 100): Promise<Array<{ id: string; thread_id: string; attempt: number }>> {
  const { rows } = await sql<{ id: string; thread_id: string; attempt: number }>`
    select r.id, r.thread_id, r.attempt from runs r
    where r.waiting_since is not null and r.status = 'running'
      and exists (select 1 from tool_waits w where w.run_id = r.id and w.status <> 'pending'
        and w.answered_at >= r.waiting_since and w.answered_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000}))
      and not exists (select 1 from tool_waits w where w.run_id = r.id and w.status = 'pending')
    order by r.waiting_since
    limit ${limit}`.execute(db);
  return rows;
}

