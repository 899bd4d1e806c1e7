/**
 * Reading a thread's event log for clients: replay after a seq (the socket fan-out, batched across
 * sockets), the long-poll, and history pages. Reads only; the caller has checked that the thread is
 * the reader's. Writes, and the reads a writer makes about its own run, are in events.repository.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { toFrame, type StoredEvent } from './events.repository.js';

/** The rows of the thread's events with seq > afterSeq, oldest first, at most `limit`. */
function eventRowsAfter(db: Kysely<Database>, threadId: string, afterSeq: number, limit: number) {
  return db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
}

/** Events with seq > afterSeq, oldest first. The caller has already checked access to the thread. */
export async function listEventsAfter(db: Kysely<Database>, threadId: string, afterSeq: number, limit = 1000): Promise<StoredEvent[]> {
  const rows = await eventRowsAfter(db, threadId, afterSeq, limit);
  return rows.map((r) => ({ seq: r.seq, frame: toFrame(r.type, r.payload) }));
}

/** The same read as the event payloads themselves (the long-poll answers them in a JSON body). */
export async function listEventPayloadsAfter(
  db: Kysely<Database>,
  threadId: string,
  afterSeq: number,
  limit: number,
): Promise<Array<{ type: string; payload: Record<string, unknown> }>> {
  const rows = await eventRowsAfter(db, threadId, afterSeq, limit);
  return rows.map((r) => ({ type: r.type, payload: r.payload }));
}

/** One replay read: events of the thread with seq > afterSeq. */
export interface ReplayRead {
  threadId: string;
  afterSeq: number;
}

/**
 * listEventsAfter for several reads in one statement (each its own page of at most `limit`), and
 * for each whether its thread still exists: a replay that finds nothing must tell "no new events"
 * from "the thread was deleted". Results come back in the reads' order.
 */
export async function readEventsAfterEach(
  db: Kysely<Database>,
  reads: readonly ReplayRead[],
  limit: number,
): Promise<Array<{ events: StoredEvent[]; threadExists: boolean }>> {
  const results = reads.map(() => ({ events: [] as StoredEvent[], threadExists: false }));
  if (reads.length === 0) return results;
  const wanted = JSON.stringify(reads.map((r, i) => ({ i, thread_id: r.threadId, after_seq: r.afterSeq })));
  const result = await sql<{ i: number; live: boolean; seq: number | null; type: string | null; payload: Record<string, unknown> | null }>`
    select r.i, t.id is not null as live, e.seq, e.type, e.payload
    from jsonb_to_recordset(${wanted}::jsonb) as r(i int, thread_id text, after_seq bigint)
    left join threads t on t.id = r.thread_id
    left join lateral (
      select seq, type, payload from events where thread_id = r.thread_id and seq > r.after_seq order by seq limit ${limit}
    ) e on true
    order by r.i, e.seq`.execute(db);
  for (const row of result.rows) {
    const target = results[row.i]!;
    target.threadExists = row.live;
    if (row.seq !== null) target.events.push({ seq: row.seq, frame: toFrame(row.type!, row.payload) });
  }
  return results;
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
