import type { Kysely } from 'kysely';
import type { Agent, Database } from './schema.js';

/** An agent the workspace may use: its own, or a global one (workspace_id null). */
export async function findUsableAgent(db: Kysely<Database>, agentId: string, workspaceId: string): Promise<Agent | undefined> {
  return db
    .selectFrom('agents')
    .selectAll()
    .where('id', '=', agentId)
    .where('deleted_at', 'is', null)
    .where((eb) => eb.or([eb('workspace_id', '=', workspaceId), eb('workspace_id', 'is', null)]))
    .executeTakeFirst();
}
