/**
 * The per-thread event log. Appending assigns `seq = threads.last_seq + 1` and stores the wire
 * payload (seq and timestamp included) in one statement, so seq has no gaps and what was stored is
 * byte for byte what was sent.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { EventDraft } from '../protocol/frames.js';
import { metrics } from '../metrics/index.js';

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
  constructor(runId: string) {
    super(`run ${runId}: this attempt no longer owns the run`);
    this.name = 'FencedError';
  }
}

export function toFrame(type: string, payload: unknown): string {
  return JSON.stringify({ type, payload });
}

export async function appendEvent(
  db: Kysely<Database>,
  threadId: string,
  draft: EventDraft,
  fence?: WriteFence,
): Promise<StoredEvent> {
  const base = draft.run_id ? { thread_id: threadId, run_id: draft.run_id } : { thread_id: threadId };
  const payload = JSON.stringify({ ...base, ...draft.payload });
  const fenced = fence
    ? sql`and exists (select 1 from runs where id = ${fence.runId} and attempt = ${fence.attempt} and status = 'running')`
    : sql``;
  const started = performance.now();
  const result = await sql<{ seq: number; payload: Record<string, unknown> }>`
    with t as (
      update threads set last_seq = last_seq + 1, updated_at = clock_timestamp()
      where id = ${threadId} ${fenced}
      returning last_seq
    )
    insert into events (thread_id, seq, run_id, type, payload)
    select ${threadId}, t.last_seq, ${draft.run_id ?? null}, ${draft.type},
      ${payload}::jsonb || jsonb_build_object(
        'seq', t.last_seq,
        'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    from t
    returning seq, payload`.execute(db);
  const row = result.rows[0];
  // One event per statement today; inside a transaction its commit comes later and is not included.
  if (row) metrics.observeAppendBatch(1, (performance.now() - started) / 1000);
  if (!row) {
    if (fence) throw new FencedError(fence.runId);
    throw new Error(`thread ${threadId} does not exist`);
  }
  return { seq: row.seq, frame: toFrame(draft.type, row.payload) };
}

/** Events with seq > afterSeq, oldest first. The caller has already checked access to the thread. */
export async function listEventsAfter(
  db: Kysely<Database>,
  threadId: string,
  afterSeq: number,
  limit = 1000,
): Promise<StoredEvent[]> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ seq: r.seq, frame: toFrame(r.type, r.payload) }));
}

/** A page of the log ending before `beforeSeq` (newest page first), returned oldest first. */
export async function listEventsBefore(
  db: Kysely<Database>,
  threadId: string,
  beforeSeq: number | undefined,
  limit: number,
): Promise<{ events: Array<{ type: string; payload: Record<string, unknown> }>; hasMore: boolean }> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .$if(beforeSeq !== undefined, (q) => q.where('seq', '<', beforeSeq!))
    .orderBy('seq', 'desc')
    .limit(limit + 1)
    .execute();
  const hasMore = rows.length > limit;
  const page = rows.slice(0, limit).reverse();
  return { events: page.map((r) => ({ type: r.type, payload: r.payload })), hasMore };
}
