/**
 * Answers to tool calls a waiting run waits on: the owner's (the first answer wins, under the
 * thread's lock like every writer of a thread's runs and events), the workers' sweep expiring a
 * wait past its deadline, and a cancelled run's (waiting-runs.repository.ts). Every resolution
 * stores its event in the same transaction; the caller publishes it and, when nothing of the run
 * is pending any more, queues its resume.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { appendBatch, appendEvent, type StoredEvent } from './events.repository.js';
import { newId } from './ids.js';
import { ownedBy, type Owner } from './owner.js';
import type { Database, ToolWait, ToolWaitKind, ToolWaitStatus } from './schema.js';

/** What a waiting run is told: a person's decision, or a client tool's result. */
export type ToolAnswer = { approved: boolean; reason?: string } | { result: string };

/** A resolution stored: its events (to publish) and, when the run has nothing pending left, the attempt to resume. */
export interface Resolved {
  threadId: string;
  events: StoredEvent[];
  /** The run waits on nothing more: queue its resume (enqueueResume with this attempt). */
  resume?: { attempt: number };
}

export type AnswerOutcome =
  /** No such wait on a run of this owner (a stranger sees the same). */
  | { kind: 'not_found' }
  /** The call waits for the other kind of answer (a result where an approval is due, or the reverse). */
  | { kind: 'mismatch'; waitKind: ToolWaitKind }
  /** Answered before (the first answer won), or cancelled with its run. */
  | { kind: 'already_answered'; status: ToolWaitStatus }
  /** Past its deadline: stored as expired now (publish and resume as for an answer), the answer refused. */
  | ({ kind: 'expired' } & Resolved)
  | ({ kind: 'answered'; status: ToolWaitStatus } & Resolved);

/**
 * Records the owner's answer to a pending wait, with its event (approval_resolved, or for a
 * client's result tool_completed and the tool message), in one transaction under the thread's
 * lock: of two answers at once, the second finds the first and is `already_answered`.
 */
export async function answerToolWait(db: Kysely<Database>, owner: Owner, runId: string, toolCallId: string, answer: ToolAnswer): Promise<AnswerOutcome> {
  const run = await db.selectFrom('runs').select('thread_id').where('id', '=', runId).where(ownedBy(owner)).executeTakeFirst();
  if (!run) return { kind: 'not_found' };
  return db.transaction().execute(async (trx) => {
    const wait = await lockedWait(trx, run.thread_id, runId, toolCallId);
    if (!wait) return { kind: 'not_found' };
    if (wait.status !== 'pending') return { kind: 'already_answered', status: wait.status };
    const approval = 'approved' in answer;
    if ((wait.kind === 'approval') !== approval) return { kind: 'mismatch', waitKind: wait.kind };
    if (wait.expired) return { kind: 'expired', ...(await resolve(trx, wait, 'expired')) };
    const status: ToolWaitStatus = 'approved' in answer ? (answer.approved ? 'approved' : 'denied') : 'answered';
    const reason = 'approved' in answer && !answer.approved ? answer.reason : undefined;
    const result = 'result' in answer ? answer.result : undefined;
    return { kind: 'answered', status, ...(await resolve(trx, wait, status, { reason, result })) };
  });
}

/** Expires one wait if it is still pending and past its deadline (approval_resolved `expired` for an approval). */
export async function expireToolWait(db: Kysely<Database>, wait: { run_id: string; tool_call_id: string; thread_id: string }): Promise<Resolved | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await lockedWait(trx, wait.thread_id, wait.run_id, wait.tool_call_id);
    if (!row || row.status !== 'pending' || !row.expired) return undefined;
    return resolve(trx, row, 'expired');
  });
}

type LockedWait = ToolWait & { expired: boolean };

/** The wait, read under its thread's lock (taken first, as every writer of the thread does). */
async function lockedWait(trx: Transaction<Database>, threadId: string, runId: string, toolCallId: string): Promise<LockedWait | undefined> {
  const thread = await trx.selectFrom('threads').select('id').where('id', '=', threadId).forNoKeyUpdate().executeTakeFirst();
  if (!thread) return undefined;
  return trx
    .selectFrom('tool_waits')
    .selectAll()
    .select(sql<boolean>`expires_at <= clock_timestamp()`.as('expired'))
    .where('run_id', '=', runId)
    .where('tool_call_id', '=', toolCallId)
    .executeTakeFirst();
}

/**
 * Stores a wait's resolution and its event: approval_resolved for an approval (any outcome), for a
 * client's result tool_completed with the tool message (an expired or cancelled client wait has no
 * event of its own: the resumed run reports it). `resume` when the run waits on nothing else.
 */
export async function resolve(
  trx: Transaction<Database>,
  wait: ToolWait,
  status: Exclude<ToolWaitStatus, 'pending'>,
  detail: { reason?: string; result?: string } = {},
): Promise<Resolved> {
  const updated = await trx
    .updateTable('tool_waits')
    .set({ status, reason: detail.reason ?? null, result: detail.result ?? null, answered_at: sql<Date>`clock_timestamp()` })
    .where('run_id', '=', wait.run_id)
    .where('tool_call_id', '=', wait.tool_call_id)
    .returning(sql<number>`round(extract(epoch from (answered_at - created_at)) * 1000)::float8`.as('waited_ms'))
    .executeTakeFirstOrThrow();
  const events: StoredEvent[] = [];
  const base = { tool_call_id: wait.tool_call_id };
  if (wait.kind === 'approval') {
    if (status === 'answered') throw new Error('an approval is approved or denied, not answered');
    events.push(await appendEvent(trx, wait.thread_id, {
      type: 'approval_resolved',
      run_id: wait.run_id,
      payload: { ...base, tool_name: wait.tool_name, status, ...(detail.reason ? { reason: detail.reason } : {}) },
    }));
  } else if (status === 'answered') {
    const result = detail.result ?? '';
    events.push(await appendToolResult(trx, wait, result, Number(updated.waited_ms)));
  }
  return { threadId: wait.thread_id, events, ...(await resumable(trx, wait.run_id)) };
}

/** A client tool's result: tool_completed (not an error), stored with the tool message the model reads. */
async function appendToolResult(trx: Transaction<Database>, wait: ToolWait, result: string, waitedMs: number): Promise<StoredEvent> {
  const [outcome] = await appendBatch(trx, [{
    threadId: wait.thread_id,
    draft: {
      type: 'tool_completed',
      run_id: wait.run_id,
      payload: { tool_call_id: wait.tool_call_id, name: wait.tool_name, result, is_error: false, duration_ms: Math.max(0, waitedMs) },
    },
    message: { id: newId('m'), role: 'tool', content: result, tool_call_id: wait.tool_call_id },
  }]);
  if (!outcome || !('event' in outcome)) throw new Error(`the result of ${wait.tool_call_id} was not stored`);
  return outcome.event;
}

/** `resume` with the run's parked attempt when it waits and nothing of it is pending. */
async function resumable(trx: Transaction<Database>, runId: string): Promise<{ resume?: { attempt: number } }> {
  const run = await trx
    .selectFrom('runs')
    .select('attempt')
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .where('waiting_since', 'is not', null)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('tool_waits').select('run_id').whereRef('tool_waits.run_id', '=', 'runs.id').where('tool_waits.status', '=', 'pending'))),
    )
    .executeTakeFirst();
  return run ? { resume: { attempt: run.attempt } } : {};
}
