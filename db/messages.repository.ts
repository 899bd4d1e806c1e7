/**
 * Messages are the prompt context. They are written with the events that announce them: a user's
 * by record_turn (db/turns.repository.ts), a run's along with one of its events (RunMessage in
 * db/events.repository.ts), so a message is stored if and only if its event is.
 */
import type { Kysely } from 'kysely';
import type { Database, Message } from './schema.js';

/** The thread's messages in the order they were written (the prompt context). */
export async function listThreadMessages(db: Kysely<Database>, threadId: string): Promise<Message[]> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('thread_id', '=', threadId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}
