/**
 * Runs and the per-thread order of turns. BullMQ's open-source edition has no per-group
 * concurrency, so "one turn per thread at a time" is decided here: a worker claims a run only
 * while holding the thread's row lock, only if no other run of the thread is running and no older
 * one is still queued. A job whose run cannot start yet simply ends; the run that finishes
 * enqueues the thread's next queued run, and the sweeper re-enqueues any whose wake-up was lost.
 * This holds across any number of worker processes because the decision is one Postgres
 * transaction. Heartbeats and the sweeper's queries are in run-liveness.repository.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Agent, Database, Message, Run, RunStatus, Thread } from './schema.js';
import { ownedBy, type Owner } from './owner.js';
import { newId } from './ids.js';
import { toFrame, type StoredEvent, type WriteFence } from './events.repository.js';

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
  /** The queue job that claims: stored with the attempt (runs.claimed_by). */
  job?: string;
  /**
   * Take over only an attempt this job claimed: a job re-delivered after its worker died never
   * takes the run from a newer attempt that replaced it meanwhile (a sweeper's takeover), alive.
   */
  fromJob?: string;
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
 * One round trip: the `claim_run` function of migration 0010, which decides under the thread's
 * row lock.
 */
export async function claimRun(db: Kysely<Database>, runId: string, options: ClaimOptions = {}): Promise<Claim> {
  const { rows } = await sql<{ claim: ClaimRow }>`
    select claim_run(${runId}, ${options.takeover ?? false}, ${options.fromAttempt ?? null}::int,
      ${options.staleMs ?? null}::double precision, ${newId('m')}, ${options.start ?? false},
      ${options.job ?? null}::text, ${options.fromJob ?? null}::text) as claim`.execute(db);
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

/** A run the caller owns (workspace and user), or undefined. */
export async function findOwnedRun(db: Kysely<Database>, runId: string, owner: Owner): Promise<Run | undefined> {
  return db
    .selectFrom('runs')
    .selectAll()
    .where('id', '=', runId)
    .where(ownedBy(owner))
    .executeTakeFirst();
}

/** Ids of the thread's running runs (to be told to stop when the thread goes). */
export async function runningRunsOfThread(db: Kysely<Database>, threadId: string): Promise<string[]> {
  const rows = await db.selectFrom('runs').select('id').where('thread_id', '=', threadId).where('status', '=', 'running').execute();
  return rows.map((r) => r.id);
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
