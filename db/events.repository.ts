/**
 * The per-thread event log. Appending assigns each event `seq = threads.last_seq + 1, + 2, ...`
 * and stores the wire payload (seq and timestamp included) in the same statement, so seq has no
 * gaps and what was stored is byte for byte what was sent. The statement is the `append_events`
 * function of migration 0004: one round trip for a whole batch, whichever threads and runs it
 * spans (see there for the locking and fencing).
 *
 * This file is the writers' side: appending, and the reads a run's writer makes about its own
 * events. Clients' reads (replay, long-poll, history) are in event-reads.repository.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, RunOutcome, ToolCallRecord } from './schema.js';
import { newWriteId } from './ids.js';
import type { EventDraft, EventType } from '../protocol/frames.js';

/** A stored event, ready to send: `frame` is the JSON text of `{type, payload}`. */
export interface StoredEvent {
  seq: number;
  frame: string;
}

/** The run attempt that may write; a stale attempt's write is refused (see FencedError). */
export interface WriteFence {
  runId: string;
  attempt: number;
}

/** The run was claimed again by another attempt (or finished): this writer must stop. */
export class FencedError extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId}: this attempt no longer owns the run`);
    this.name = 'FencedError';
  }
}

/** The thread no longer exists (deleted, with its runs and events): nothing more is written to it. */
export class ThreadGoneError extends Error {
  constructor(readonly threadId: string) {
    super(`thread ${threadId} does not exist`);
    this.name = 'ThreadGoneError';
  }
}

/** A message a run stores along with one of its events (same transaction). */
export interface RunMessage {
  id: string;
  role: 'assistant' | 'tool';
  content: string;
  /** assistant: the tool calls the model asked for. */
  tool_calls?: ToolCallRecord[];
  /** tool: the call this result answers. */
  tool_call_id?: string;
}

/** One event to append, with what must be stored with it. */
export interface AppendItem {
  threadId: string;
  draft: EventDraft;
  /** Only this attempt of the run may write the item (and its message and outcome). */
  fence?: WriteFence;
  message?: RunMessage;
  /** The run's outcome, recorded with its agent_completed (needs `fence`). */
  finish?: RunOutcome;
}

/**
 * What became of one item: stored (and, for a finished run, the thread's next queued run),
 * refused, or, in a batch that does not wait for locks, `busy`: another transaction held its
 * thread, nothing of it was stored (write it again, waiting).
 */
export type AppendOutcome =
  | { event: StoredEvent; nextRunId?: string }
  | { refused: FencedError | ThreadGoneError }
  | { busy: true };

export interface AppendOptions {
  /** This write's id (db/ids.ts newWriteId): a writer that loses the answer settles the write by it (event-writes.repository.ts). @defaultValue a new one */
  writeId?: string;
  /** Wait for the threads' locks; false: items of a thread another transaction holds come back `busy`. @defaultValue true */
  wait?: boolean;
}

export function toFrame(type: string, payload: unknown): string {
  return JSON.stringify({ type, payload });
}

/**
 * Appends the items in one statement (one transaction): all stored or, if it fails, none.
 * Refused items (their thread is gone, their attempt fenced off) take no seq and do not fail the
 * others. Within a thread, seqs follow the items' order. Outcomes come back in the items' order.
 */
export async function appendBatch(db: Kysely<Database>, items: readonly AppendItem[], options: AppendOptions = {}): Promise<AppendOutcome[]> {
  const { rows } = await sql<{ idx: number; seq: number | null; payload: Record<string, unknown> | null; refused: string | null; next_run: string | null }>`
    select idx, seq, payload, refused, next_run
    from append_events(${eventBatch(items)}::jsonb, ${options.writeId ?? newWriteId()}, ${options.wait ?? true})`.execute(db);
  const outcomes: AppendOutcome[] = new Array(items.length);
  for (const row of rows) {
    const item = items[row.idx]!;
    if (row.refused === 'busy') outcomes[row.idx] = { busy: true };
    else if (row.refused === 'thread_gone') outcomes[row.idx] = { refused: new ThreadGoneError(item.threadId) };
    else if (row.refused) outcomes[row.idx] = { refused: new FencedError(item.fence?.runId ?? item.draft.run_id ?? '') };
    else outcomes[row.idx] = { event: { seq: row.seq!, frame: toFrame(item.draft.type, row.payload) }, ...(row.next_run ? { nextRunId: row.next_run } : {}) };
  }
  return outcomes;
}

/** The items as append_events takes its `batch` argument: a JSON array of event_batch_item records. */
export function eventBatch(items: readonly AppendItem[]): string {
  return JSON.stringify(items.map((item, idx) => {
    const { draft, fence } = item;
    const base = draft.run_id ? { thread_id: item.threadId, run_id: draft.run_id } : { thread_id: item.threadId };
    return {
      idx,
      thread_id: item.threadId,
      run_id: draft.run_id ?? null,
      type: draft.type,
      payload: { ...base, ...draft.payload },
      fence_run: fence?.runId ?? null,
      fence_attempt: fence?.attempt ?? null,
      message: item.message ?? null,
      finish: item.finish ? { status: item.finish.status, error: item.finish.error ?? null, usage: item.finish.usage ?? null } : null,
    };
  }));
}

/** Appends one event (in the caller's transaction when `db` is one). Throws FencedError or ThreadGoneError. */
export async function appendEvent(
  db: Kysely<Database>,
  threadId: string,
  draft: EventDraft,
  fence?: WriteFence,
): Promise<StoredEvent> {
  const [outcome] = await appendBatch(db, [{ threadId, draft, fence }]);
  if ('refused' in outcome!) throw outcome.refused;
  if ('busy' in outcome!) throw new Error('unreachable: a waiting append is never busy');
  return outcome!.event;
}

/**
 * A run's events with seq > afterSeq, oldest first, at most `limit`: after a write whose answer was
 * lost, whether it committed after all.
 */
export async function runEventsAfter(
  db: Kysely<Database>,
  threadId: string,
  runId: string,
  afterSeq: number,
  limit: number,
): Promise<Array<StoredEvent & { type: EventType }>> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .where('run_id', '=', runId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ seq: r.seq, type: r.type as EventType, frame: toFrame(r.type, r.payload) }));
}

/** The newest stored event of a run (its agent_completed once it has finished), or undefined. */
export async function lastRunEvent(db: Kysely<Database>, threadId: string, runId: string): Promise<StoredEvent | undefined> {
  const row = await db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .where('run_id', '=', runId)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { seq: row.seq, frame: toFrame(row.type, row.payload) } : undefined;
}
