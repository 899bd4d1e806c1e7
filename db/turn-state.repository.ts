/**
 * A run parked between two jobs, and its resumption: the stored state a turn continues from when
 * it stopped before a tool call (workers/turn/tool-gate.ts).
 *
 * Parked is a waiting run: status 'running' (it keeps its thread, as a turn in progress does, and
 * its place in the per-user run limit) with `waiting_since` set, no worker holding it and no job
 * queued for it. Parking moves its attempt on (fencing off the attempt that parked it, its late
 * writes and any heartbeat still in flight); the sweeper and start-up recovery leave waiting runs
 * alone. A run that waits for someone has a row per waited-on call in tool_waits
 * (tool-waits.repository.ts), created here with its request event; a resume job claims the run
 * only once none of them is pending. These functions are the only ones that know how a parked run
 * is stored.
 */
import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import { FencedError, ThreadGoneError, type RunMessage, type StoredEvent, type WriteFence } from './events.repository.js';
import type { Agent, Database, Message, Run, Thread } from './schema.js';
import { insertToolWait, type NewToolWait } from './tool-waits.repository.js';

export interface TurnUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * Parks the run `fence` holds: the usage so far is kept on the run, `message` (the assistant
 * message with the step's tool calls, when no event of the step has stored it yet) is stored, and
 * with `wait` the call's wait and its request event (approval_requested or client_tool_requested;
 * returned, to publish). One transaction, under the thread's lock like every writer of a thread's
 * runs. Throws FencedError when the attempt no longer holds the run, ThreadGoneError when the
 * thread is gone.
 */
export async function parkRun(
  db: Kysely<Database>,
  threadId: string,
  fence: WriteFence,
  park: { message?: RunMessage; usage: TurnUsage; wait?: NewToolWait },
): Promise<StoredEvent | undefined> {
  return db.transaction().execute(async (trx) => {
    const thread = await trx.selectFrom('threads').select('id').where('id', '=', threadId).forNoKeyUpdate().executeTakeFirst();
    if (!thread) throw new ThreadGoneError(threadId);
    const parked = await trx
      .updateTable('runs')
      .set({ attempt: sql`attempt + 1`, waiting_since: sql`clock_timestamp()`, usage: JSON.stringify(park.usage) })
      .where('id', '=', fence.runId)
      .where('attempt', '=', fence.attempt)
      .where('status', '=', 'running')
      .returning('id')
      .executeTakeFirst();
    if (!parked) throw new FencedError(fence.runId);
    const message = park.message;
    if (message) {
      await trx
      .insertInto('messages')
        .values({
          id: message.id,
          thread_id: threadId,
          run_id: fence.runId,
          role: message.role,
          content: message.content,
          tool_calls: message.tool_calls ? JSON.stringify(message.tool_calls) : null,
          tool_call_id: message.tool_call_id ?? null,
          client_message_id: null,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      await trx.updateTable('threads').set({ updated_at: sql`clock_timestamp()` }).where('id', '=', threadId).execute();
    }
    return park.wait ? insertToolWait(trx, threadId, fence.runId, park.wait) : undefined;
  });
}

/** A parked run, claimed by the job that resumes it, with the stored state the turn goes on from. */
export interface ParkedClaim {
  run: Run;
  thread: Thread;
  agent: Agent;
  fence: WriteFence;
  /** The thread's messages, oldest first (the run's pending tool calls among them). */
  messages: Message[];
  /** The answer's text so far: the run's message_delta events for its assistant message. */
  text: string;
  /** The model's usage so far, kept by the park. */
  usage: TurnUsage;
}

/** Whether the run waits (parked): a takeover must never restart it, only a resume continues it. */
export async function isWaiting(db: Kysely<Database>, runId: string): Promise<boolean> {
  const row = await db.selectFrom('runs').select('id').where('id', '=', runId).where('status', '=', 'running').where('waiting_since', 'is not', null).executeTakeFirst();
  return row !== undefined;
}

/** A waiting run none of whose waits is pending: one a job may resume. */
const resumable = (eb: ExpressionBuilder<Database, 'runs'>) =>
  eb.and([
    eb('status', '=', 'running'),
    eb('waiting_since', 'is not', null),
    eb.not(eb.exists(eb.selectFrom('tool_waits').select('run_id').whereRef('tool_waits.run_id', '=', 'runs.id').where('tool_waits.status', '=', 'pending'))),
  ]);

/**
 * Claims a parked run for the job that resumes it (the attempt parking set; it waits no longer and
 * its heartbeat starts), or undefined when the run is not parked (not yet, or no longer: another
 * job resumed it, or it was cancelled) or still waits for an answer.
 */
export async function claimParkedRun(db: Kysely<Database>, runId: string, jobId: string): Promise<ParkedClaim | undefined> {
  // Most runs a job finds running are not parked (a duplicate delivery): one plain read says so.
  const parked = await db.selectFrom('runs').select('thread_id').where('id', '=', runId).where(resumable).executeTakeFirst();
  if (!parked) return undefined;
  return db.transaction().execute(async (trx) => {
    const thread = await trx.selectFrom('threads').selectAll().where('id', '=', parked.thread_id).forNoKeyUpdate().executeTakeFirst();
    if (!thread) return undefined;
    const run = await trx
      .updateTable('runs')
      .set({ heartbeat_at: sql`clock_timestamp()`, waiting_since: null, claimed_by: jobId })
      .where('id', '=', runId)
      .where(resumable)
      .returningAll()
      .executeTakeFirst();
    if (!run) return undefined;
    const agent = await trx.selectFrom('agents').selectAll().where('id', '=', run.agent_id).executeTakeFirstOrThrow();
    const messages = await trx.selectFrom('messages').selectAll().where('thread_id', '=', thread.id).orderBy('created_at').orderBy('id').execute();
    return {
      run,
      thread,
      agent,
      fence: { runId, attempt: run.attempt },
      messages,
      text: await streamedText(trx, thread.id, runId, run.assistant_message_id),
      usage: { prompt_tokens: run.usage?.prompt_tokens ?? 0, completion_tokens: run.usage?.completion_tokens ?? 0 },
    };
  });
}

/** The text a run has streamed into its assistant message so far: its message_delta events joined. */
export async function streamedText(db: Kysely<Database>, threadId: string, runId: string, messageId: string | null): Promise<string> {
  const deltas = await db
    .selectFrom('events')
    .select(sql<string>`coalesce(string_agg(payload->>'delta', '' order by seq), '')`.as('text'))
    .where('thread_id', '=', threadId)
    .where('run_id', '=', runId)
    .where('type', '=', 'message_delta')
    .where(sql`payload->>'message_id'`, '=', messageId)
    .executeTakeFirst();
  return deltas?.text ?? '';
}
