/**
 * Threads as their owner reads and changes them. A thread is also created by a user's first
 * message (record_turn, db/turns.repository.ts) and its `last_seq` moves with every stored event.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, Thread } from './schema.js';
import { newId } from './ids.js';
import { ownedBy, type Owner } from './owner.js';

export async function findOwnedThread(db: Kysely<Database>, threadId: string, owner: Owner): Promise<Thread | undefined> {
  return db
    .selectFrom('threads')
    .selectAll()
    .where('id', '=', threadId)
    .where(ownedBy(owner))
    .executeTakeFirst();
}

/** The threads with these ids, whoever owns them (the caller filters with isOwnedBy). */
export async function findThreadsById(db: Kysely<Database>, threadIds: readonly string[]): Promise<Thread[]> {
  if (threadIds.length === 0) return [];
  return db.selectFrom('threads').selectAll().where('id', 'in', threadIds).execute();
}

/** A new, empty thread bound to `agentId` (the caller has checked the agent is usable). */
export async function insertThread(db: Kysely<Database>, owner: Owner, input: { agentId: string; title: string | null }): Promise<Thread> {
  return (await insertThreadWithId(db, owner, { ...input, id: newId('t') }))!;
}

/**
 * A new, empty thread with the id a client chose (AG-UI and the AI SDK name their threads), or
 * undefined when a thread with that id exists already (anyone's).
 */
export async function insertThreadWithId(db: Kysely<Database>, owner: Owner, input: { id: string; agentId: string; title: string | null }): Promise<Thread | undefined> {
  return db
    .insertInto('threads')
    .values({
      id: input.id,
      workspace_id: owner.workspaceId,
      user_id: owner.userId,
      agent_id: input.agentId,
      title: input.title,
      archived_at: null,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returningAll()
    .executeTakeFirst();
}

/** A thread of a list page, with its `updated_at` at full microsecond precision for the cursor. */
export type ListedThread = Thread & { cursor_at: string };

export interface ThreadListQuery {
  archived: boolean;
  limit: number;
  /** Rows after this one in the list order: its updated_at (ISO text, microseconds) and id. */
  after?: { updatedAt: string; id: string };
}

/**
 * The owner's threads, most recently active first, at most `limit` after `after`. `cursor_at`
 * keeps updated_at's microseconds: a JS Date would cut them to milliseconds and the next page
 * would skip the rows sharing the boundary row's millisecond.
 */
export async function listOwnedThreads(
  db: Kysely<Database>,
  owner: Owner,
  query: ThreadListQuery,
): Promise<{ threads: ListedThread[]; hasMore: boolean }> {
  const { after, limit } = query;
  const rows = await db
    .selectFrom('threads')
    .selectAll()
    .select(sql<string>`to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('cursor_at'))
    .where(ownedBy(owner))
    .where('archived_at', query.archived ? 'is not' : 'is', null)
    .$if(after !== undefined, (q) =>
      q.where((eb) =>
        eb.or([
          eb('updated_at', '<', sql<Date>`cast(${after!.updatedAt} as timestamptz)`),
          eb.and([eb('updated_at', '=', sql<Date>`cast(${after!.updatedAt} as timestamptz)`), eb('id', '<', after!.id)]),
        ]),
      ),
    )
    .orderBy('updated_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  return { threads: rows.slice(0, limit), hasMore: rows.length > limit };
}

/** Changes the owner's thread; archiving keeps the first archived_at. Undefined when it is not theirs (or gone). */
export async function updateOwnedThread(
  db: Kysely<Database>,
  owner: Owner,
  threadId: string,
  changes: { title?: string | null; archived?: boolean },
): Promise<Thread | undefined> {
  return db
    .updateTable('threads')
    .set({
      ...(changes.title !== undefined ? { title: changes.title } : {}),
      ...(changes.archived !== undefined ? { archived_at: changes.archived ? sql<Date>`coalesce(archived_at, now())` : null } : {}),
    })
    .where('id', '=', threadId)
    .where(ownedBy(owner))
    .returningAll()
    .executeTakeFirst();
}

/** Deletes the owner's thread with its messages, runs and events (cascade). False when it was not theirs (or gone). */
export async function deleteOwnedThread(db: Kysely<Database>, owner: Owner, threadId: string): Promise<boolean> {
  const deleted = await db.deleteFrom('threads').where('id', '=', threadId).where(ownedBy(owner)).executeTakeFirst();
  return deleted.numDeletedRows > 0n;
}
