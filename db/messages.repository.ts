import { sql, type Kysely } from 'kysely';
import { FencedError, type WriteFence } from './events.repository.js';
import type { Database, Message, NewMessage } from './schema.js';

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

export async function insertMessage(db: Kysely<Database>, message: NewMessage): Promise<void> {
  await db.insertInto('messages').values(message).execute();
}

/** Inserts a message written by a run, only while `fence` still owns the run. */
export async function insertRunMessage(db: Kysely<Database>, fence: WriteFence, message: Omit<NewMessage, 'run_id'>): Promise<void> {
  const result = await sql`
    insert into messages (id, thread_id, run_id, role, content, tool_calls, tool_call_id, client_message_id)
    select ${message.id}, ${message.thread_id}, ${fence.runId}, ${message.role}, ${message.content},
      ${message.tool_calls ?? null}::jsonb, ${message.tool_call_id ?? null}, null
    where exists (select 1 from runs where id = ${fence.runId} and attempt = ${fence.attempt} and status = 'running')`.execute(db);
  // Some drivers leave numAffectedRows unset when it is zero.
  if ((result.numAffectedRows ?? 0n) === 0n) throw new FencedError(fence.runId);
}

/** Whether a message with this id is stored (a write that lost its connection may have committed). */
export async function messageExists(db: Kysely<Database>, id: string): Promise<boolean> {
  return (await db.selectFrom('messages').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}
