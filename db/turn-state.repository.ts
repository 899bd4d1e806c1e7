/**
 * A run parked between two jobs, and its resumption: the stored state a turn continues from when
 * it stopped before a tool call (workers/turn/tool-gate.ts).
 *
 * Parked is, for now, a running run that no attempt drives: parking moves its attempt on (fencing
 * off the attempt that parked it, its late writes and any heartbeat still in flight) and sets its
 * heartbeat to 'infinity', so no sweeper finds it stale and nothing takes it over. It keeps its
 * thread, as a turn in progress does (later runs of the thread queue behind it). A run that waits
 * for a person will get a status of its own (`waiting`, with a migration) instead of the infinite
 * heartbeat; these functions are the only ones that know how a parked run is stored. Until then a
 * parked run has the limits of a running one that no worker holds: run.cancel (which signals the
 * workers) does not reach it, and a single node's start-up recovery ends it failed.
 */
import { sql, type Kysely } from 'kysely';
import { FencedError, ThreadGoneError, type RunMessage, type WriteFence } from './events.repository.js';
import type { Agent, Database, Message, Run, Thread } from './schema.js';

export interface TurnUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * Parks the run `fence` holds: the usage so far is kept on the run, and `message` (the assistant
 * message with the step's tool calls, when no event of the step has stored it yet) is stored. One
 * transaction, under the thread's lock like every writer of a thread's runs. Throws FencedError
 * when the attempt no longer holds the run, ThreadGoneError when the thread is gone.
 */
export async function parkRun(
  db: Kysely<Database>,
  threadId: string,
  fence: WriteFence,
  park: { message?: RunMessage; usage: TurnUsage },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const thread = await trx.selectFrom('threads').select('id').where('id', '=', threadId).forNoKeyUpdate().executeTakeFirst();
    if (!thread) throw new ThreadGoneError(threadId);
    const parked = await trx
      .updateTable('runs')
      .set({ attempt: sql`attempt + 1`, heartbeat_at: sql`'infinity'::timestamptz`, usage: JSON.stringify(park.usage) })
      .where('id', '=', fence.runId)
      .where('attempt', '=', fence.attempt)
      .where('status', '=', 'running')
      .returning('id')
      .executeTakeFirst();
    if (!parked) throw new FencedError(fence.runId);
    const message = park.message;
    if (!message) return;
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

/**
 * Claims a parked run for the job that resumes it (the attempt parking set; its heartbeat starts
 * again), or undefined when the run is not parked (not yet, or no longer: another job resumed it).
 */
export async function claimParkedRun(db: Kysely<Database>, runId: string): Promise<ParkedClaim | undefined> {
  // Most runs a job finds running are not parked (a duplicate delivery): one plain read says so.
  const parked = await db
    .selectFrom('runs')
    .select('thread_id')
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .where(sql<boolean>`heartbeat_at = 'infinity'::timestamptz`)
    .executeTakeFirst();
  if (!parked) return undefined;
  return db.transaction().execute(async (trx) => {
    const thread = await trx.selectFrom('threads').selectAll().where('id', '=', parked.thread_id).forNoKeyUpdate().executeTakeFirst();
    if (!thread) return undefined;
    const run = await trx
      .updateTable('runs')
      .set({ heartbeat_at: sql`clock_timestamp()` })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .where(sql<boolean>`heartbeat_at = 'infinity'::timestamptz`)
      .returningAll()
      .executeTakeFirst();
    if (!run) return undefined;
    const agent = await trx.selectFrom('agents').selectAll().where('id', '=', run.agent_id).executeTakeFirstOrThrow();
    const messages = await trx.selectFrom('messages').selectAll().where('thread_id', '=', thread.id).orderBy('created_at').orderBy('id').execute();
    const deltas = await trx
      .selectFrom('events')
      .select(sql<string>`coalesce(string_agg(payload->>'delta', '' order by seq), '')`.as('text'))
      .where('thread_id', '=', thread.id)
      .where('run_id', '=', runId)
      .where('type', '=', 'message_delta')
      .where(sql`payload->>'message_id'`, '=', run.assistant_message_id)
      .executeTakeFirst();
    return {
      run,
      thread,
      agent,
      fence: { runId, attempt: run.attempt },
      messages,
      text: deltas?.text ?? '',
      usage: { prompt_tokens: run.usage?.prompt_tokens ?? 0, completion_tokens: run.usage?.completion_tokens ?? 0 },
    };
  });
}
