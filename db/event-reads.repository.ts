/**
 * Reading a thread's event log for clients: replay after a seq (the socket fan-out, batched across
 * sockets), the long-poll, and history pages. Reads only; the caller has checked that the thread is
 * the reader's. Writes, and the reads a writer makes about its own run, are in events.repository.ts.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
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

/** Event rows read with their thread's last_seq (read replicas check their copy with it: db/read-routing.ts). */
interface CheckedRow {
  last_seq: number;
  seq: number | null;
  type: string | null;
  payload: Record<string, unknown> | null;
}

/**
 * The thread's row joined to a range of its events, in one statement (one snapshot): no rows when
 * the thread does not exist, one row with a null seq when the range is empty.
 */
async function checkedRows(db: Kysely<Database>, threadId: string, range: RawBuilder<unknown>): Promise<{ lastSeq: number | undefined; rows: Array<{ seq: number; type: string; payload: Record<string, unknown> }> }> {
  const { rows } = await sql<CheckedRow>`
    select t.last_seq, e.seq, e.type, e.payload
    from threads t
    left join lateral (select seq, type, payload from events where thread_id = t.id ${range}) e on true
    where t.id = ${threadId}`.execute(db);
  return {
    lastSeq: rows[0]?.last_seq,
    rows: rows.filter((r) => r.seq !== null).map((r) => ({ seq: r.seq!, type: r.type!, payload: r.payload! })),
  };
}

/**
 * The event payloads with seq > afterSeq, oldest first, at most `limit` (the long-poll answers them
 * in a JSON body), and the thread's last_seq where they were read.
 */
export async function listEventPayloadsAfter(
  db: Kysely<Database>,
  threadId: string,
  afterSeq: number,
  limit: number,
): Promise<{ value: Array<{ type: string; payload: Record<string, unknown> }>; lastSeq: number | undefined }> {
  const { rows, lastSeq } = await checkedRows(db, threadId, sql`and seq > ${afterSeq} order by seq limit ${limit}`);
  return { value: rows.sort((a, b) => a.seq - b.seq).map((r) => ({ type: r.type, payload: r.payload })), lastSeq };
}

/** One replay read: events of the thread with seq > afterSeq. */
export interface ReplayRead {
  threadId: string;
  afterSeq: number;
}

/**
 * listEventsAfter for several reads in one statement (each its own page of at most `limit`), and
 * for each whether its thread still exists (a replay that finds nothing must tell "no new events"
 * from "the thread was deleted") and its last_seq there (0 when it does not exist). Results come back in the reads' order.
 */
export async function readEventsAfterEach(
  db: Kysely<Database>,
  reads: readonly ReplayRead[],
  limit: number,
): Promise<Array<{ events: StoredEvent[]; threadExists: boolean; lastSeq: number }>> {
  const results = reads.map(() => ({ events: [] as StoredEvent[], threadExists: false, lastSeq: 0 }));
  if (reads.length === 0) return results;
  const wanted = JSON.stringify(reads.map((r, i) => ({ i, thread_id: r.threadId, after_seq: r.afterSeq })));
  const result = await sql<{ i: number; last_seq: number | null; seq: number | null; type: string | null; payload: Record<string, unknown> | null }>`
    select r.i, t.last_seq, e.seq, e.type, e.payload
    from jsonb_to_recordset(${wanted}::jsonb) as r(i int, thread_id text, after_seq bigint)
    left join threads t on t.id = r.thread_id
    left join lateral (
      select seq, type, payload from events where thread_id = r.thread_id and seq > r.after_seq order by seq limit ${limit}
    ) e on true
    order by r.i, e.seq`.execute(db);
  for (const row of result.rows) {
    const target = results[row.i]!;
    target.threadExists = row.last_seq !== null;
    target.lastSeq = row.last_seq ?? 0;
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

/** listEventsBefore (thread.history's page), with the thread's last_seq where it was read. */
export async function readHistoryPage(
  db: Kysely<Database>,
  threadId: string,
  beforeSeq: number | undefined,
  limit: number,
): Promise<{ value: { events: Array<{ type: string; payload: Record<string, unknown> }>; hasMore: boolean }; lastSeq: number | undefined }> {
  const before = beforeSeq === undefined ? sql`` : sql`and seq < ${beforeSeq}`;
  const { rows, lastSeq } = await checkedRows(db, threadId, sql`${before} order by seq desc limit ${limit + 1}`);
  rows.sort((a, b) => b.seq - a.seq);
  const hasMore = rows.length > limit;
  const page = rows.slice(0, limit).reverse();
  return { value: { events: page.map((r) => ({ type: r.type, payload: r.payload })), hasMore }, lastSeq };
}
