/**
 * The ids of event-log writes (migration 0007): what a writer that lost the answer to a write
 * uses to settle its fate, and the pruning of old ones.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { writeIdTime } from './ids.js';

/**
 * Settles a write whose answer was lost: true when it never committed (and, its id now voided, a
 * late copy of it will fail: write again), false when it committed (look for what it stored).
 */
export async function voidEventWrite(db: Kysely<Database>, writeId: string): Promise<boolean> {
  const { rows } = await sql<{ voided: boolean }>`select void_event_write(${writeId}) as voided`.execute(db);
  return rows[0]!.voided;
}

/**
 * Deletes the ids of writes made more than `olderThanMs` ago (a range on the primary key). A copy
 * of a write held up in the network longer than that could store its events twice, so keep it far
 * above any network's retransmission timeout (Linux gives up on a connection after ~15 minutes).
 */
export async function pruneEventWrites(db: Kysely<Database>, olderThanMs: number, now = Date.now()): Promise<number> {
  const result = await sql`delete from event_writes where id < ${writeIdTime(now - olderThanMs)}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
