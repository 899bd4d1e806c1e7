/**
 * Runs and the per-thread order of turns. BullMQ's open-source edition has no per-group
 * concurrency, so "one turn per thread at a time" is decided here: a worker claims a run only
 * while holding the thread's row lock, only if no other run of the thread is running and no older
 * one is still queued. A job whose run cannot start yet simply ends; the run that finishes
 * enqueues the thread's next queued run, and the sweeper re-enqueues any whose wake-up was lost.
 * This holds across any number of worker processes because the decision is one Postgres
 * transaction.
 */
import { sql, type Kysely } from 'kysely';
import type { Agent, Database, Message, Run, RunStatus, Thread } from './schema.js';
import type { Owner } from './threads.repository.js';
import { newId } from './ids.js';
import { appendEvent, toFrame, type StoredEvent, type WriteFence } from './events.repository.js';

export type Claim =
  | {
      kind: 'claimed';
      run: Run;
      thread: Thread;
      agent: Agent;
      fence: WriteFence;
      restarted: boolean;
      /** With `start`: the opening events, stored (publish them), and the thread's messages, oldest first. */
      opened?: StoredEvent[];
      messages?: Message[];
    }
  /** Another run of the thread is running or queued ahead: this one waits for its wake-up. */
  | { kind: 'wait' }
  /** Finished, cancelled or missing: nothing to do. */
  | { kind: 'gone'; status?: RunStatus };

/** True when the run's heartbeat (or, before the first beat, its start) is older than `staleMs`. */
function heartbeatOlderThan(staleMs: number) {
  return sql<boolean>`coalesce(heartbeat_at, started_at, created_at) < clock_timestamp() - make_interval(secs => ${staleMs / 1000})`;
}

export interface ClaimOptions {
  /** The run may still be marked running by an attempt that died: take it over. */
  takeover?: boolean;
  /**
   * Take over only from this attempt (a takeover job names the attempt it replaces, so a late
   * duplicate of the job cannot take the run from the attempt that replaced it).
   */
  fromAttempt?: number;
  /** Take over only if the run's heartbeat is older than this (the sweeper's takeovers). */
  staleMs?: number;
  /**
   * The claim is the turn's first step too: append the opening events and read the thread's
   * messages in the same round trip (see `opened`, `messages`).
   */
  start?: boolean;
}

/**
 * Claims a queued run for a new attempt. With `takeover`, a run still marked running by an attempt
 * that died is claimed too: the attempt number goes up, so the dead attempt's writes (if it was only
 * stalled, not dead) are refused by the fence, and a new assistant message id restarts the text.
 * One round trip: the `claim_run` function of migration 0004, which decides under the thread's
 * row lock.
 */
export async function claimRun(db: Kysely<Database>, runId: string, options: ClaimOptions = {}): Promise<Claim> {
  const { rows } = await sql<{ claim: ClaimRow }>`
    select claim_run(${runId}, ${options.takeover ?? false}, ${options.fromAttempt ?? null}::int,
      ${options.staleMs ?? null}::double precision, ${newId('m')}, ${options.start ?? false}) as claim`.execute(db);
  const claim = rows[0]!.claim;
  switch (claim.kind) {
    case 'gone':
      return claim.status ? { kind: 'gone', status: claim.status } : { kind: 'gone' };
    case 'wait':
      return { kind: 'wait' };
    case 'claimed': {
      const run = withDates<Run>(claim.run, ['created_at', 'started_at', 'heartbeat_at', 'finished_at']);
      return {
        kind: 'claimed',
        run,
        thread: withDates<Thread>(claim.thread, ['created_at', 'updated_at', 'archived_at']),
        agent: withDates<Agent>(claim.agent, ['created_at', 'updated_at', 'deleted_at']),
        fence: { runId, attempt: run.attempt },
        restarted: claim.restarted,
        ...(claim.opened ? { opened: claim.opened.map((e) => ({ seq: e.seq, frame: toFrame(e.type, e.payload) })) } : {}),
        ...(claim.messages ? { messages: claim.messages.map((m) => withDates<Message>(m, ['created_at'])) } : {}),
      };
    }
  }
}

type ClaimRow =
  | { kind: 'gone'; status?: RunStatus }
  | { kind: 'wait' }
  | {
      kind: 'claimed';
      restarted: boolean;
      run: Record<string, unknown>;
      thread: Record<string, unknown>;
      agent: Record<string, unknown>;
      opened: Array<{ seq: number; type: string; payload: Record<string, unknown> }> | null;
      messages: Array<Record<string, unknown>> | null;
    };


/** A row that came back as JSON, with its timestamp columns as Dates (as pg gives them). */
function withDates<T>(row: Record<string, unknown>, columns: string[]): T {
  const out: Record<string, unknown> = { ...row };
  for (const column of columns) if (typeof out[column] === 'string') out[column] = new Date(out[column] as string);
  return out as T;
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

/** Running runs whose heartbeat is older than `staleMs`: their worker is gone or cut off. */
export async function staleRuns(db: Kysely<Database>, staleMs: number, limit = 100): Promise<Array<{ id: string; thread_id: string; attempt: number }>> {
  const result = await sql<{ id: string; thread_id: string; attempt: number }>`
    select id, thread_id, attempt from runs
    where status = 'running'
      and ${heartbeatOlderThan(staleMs)}
    order by created_at
    limit ${limit}`.execute(db);
  return result.rows;
}

export interface RunOutcome {
  status: Extract<RunStatus, 'completed' | 'cancelled' | 'failed'>;
  error?: { code: string; message: string };
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens?: number };
}

/** The oldest queued run of the thread: the one to wake when the current run ends. */
export async function nextQueuedRun(db: Kysely<Database>, threadId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('runs')
    .select('id')
    .where('thread_id', '=', threadId)
    .where('status', '=', 'queued')
    .orderBy('created_at')
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  return row?.id;
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

/** A run the caller owns (workspace and user), or undefined. */
export async function findOwnedRun(db: Kysely<Database>, runId: string, owner: Owner): Promise<Run | undefined> {
  return db
    .selectFrom('runs')
    .selectAll()
    .where('id', '=', runId)
    .where('workspace_id', '=', owner.workspaceId)
    .where('user_id', '=', owner.userId)
    .executeTakeFirst();
}

/**
 * Cancels a run that has not started, and appends its `agent_completed` (status cancelled) in the
 * same transaction (one round trip: `cancel_queued_run` of migration 0004). Returns the stored
 * event, or undefined when the run was no longer queued.
 */
export async function cancelQueuedRun(db: Kysely<Database>, runId: string): Promise<StoredEvent | undefined> {
  const { rows } = await sql<{ seq: number; payload: Record<string, unknown> }>`
    select seq, payload from cancel_queued_run(${runId})`.execute(db);
  return rows[0] ? { seq: rows[0].seq, frame: toFrame('agent_completed', rows[0].payload) } : undefined;
}

/**
 * Ends a run that no worker will finish (its worker died): status failed with `code`, the text
 * streamed so far kept as the assistant message, and its one `agent_completed`, in one
 * transaction. Returns the stored event, or undefined when the run was not running.
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

/** Ids of runs marked running (an embedded node at start-up: all of them are orphans). */
export async function runningRunIds(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('runs').select('id').where('status', '=', 'running').execute();
  return rows.map((r) => r.id);
}
