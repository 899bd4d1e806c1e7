import type { Kysely } from 'kysely';
import type { Database, Thread } from './schema.js';

/** Who is asking. Every read of a thread is filtered by both. */
export interface Owner {
  workspaceId: string;
  userId: string;
}

export async function findOwnedThread(db: Kysely<Database>, threadId: string, owner: Owner): Promise<Thread | undefined> {
  return db
    .selectFrom('threads')
    .selectAll()
    .where('id', '=', threadId)
    .where('workspace_id', '=', owner.workspaceId)
    .where('user_id', '=', owner.userId)
    .executeTakeFirst();
}

/** The threads with these ids, whoever owns them (the caller filters by owner). */
export async function findThreadsById(db: Kysely<Database>, threadIds: readonly string[]): Promise<Thread[]> {
  if (threadIds.length === 0) return [];
  return db.selectFrom('threads').selectAll().where('id', 'in', threadIds).execute();
}
