/**
 * Agents. A workspace sees its own agents and the global ones (workspace_id null, such as the
 * default), never a deleted one: that rule is `visibleIn` below and every lookup of an agent for a
 * member, an admin or a new thread goes through it. (record_turn, migration 0004, applies the same
 * rule in SQL when a first message creates its thread.) Threads already bound to an agent keep it
 * after it is deleted: the worker loads a run's agent by id.
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { AgentUpdateRequest } from '../protocol/requests.js';
import type { Agent, Database } from './schema.js';
import { newId } from './ids.js';

/**
 * The seeded global agent (migration 0001, which keeps its own copy of the literal), used when a
 * thread names none. Existing databases hold a row with this id: it never changes.
 */
export const DEFAULT_AGENT_ID = 'ag_default';

/** The agent-visibility rule: not deleted, and the workspace's own or global. */
function visibleIn(workspaceId: string) {
  return (eb: ExpressionBuilder<Database, 'agents'>) =>
    eb.and([eb('deleted_at', 'is', null), eb.or([eb('workspace_id', '=', workspaceId), eb('workspace_id', 'is', null)])]);
}

/** The agents the workspace sees, oldest first. */
export async function listVisibleAgents(db: Kysely<Database>, workspaceId: string): Promise<Agent[]> {
  return db.selectFrom('agents').selectAll().where(visibleIn(workspaceId)).orderBy('created_at').orderBy('id').execute();
}

/** The agent if the workspace sees it (and may use it for a new thread), or undefined. */
export async function findVisibleAgent(db: Kysely<Database>, workspaceId: string, agentId: string): Promise<Agent | undefined> {
  return db.selectFrom('agents').selectAll().where('id', '=', agentId).where(visibleIn(workspaceId)).executeTakeFirst();
}

/** What an admin sets on the workspace's own agent (`tools` and `require_approval` stored as JSON): the fields of an update request. */
export type AgentFields = AgentUpdateRequest;

export async function insertAgent(db: Kysely<Database>, workspaceId: string, fields: AgentFields & { name: string }): Promise<Agent> {
  return db
    .insertInto('agents')
    .values({
      id: newId('ag'),
      workspace_id: workspaceId,
      name: fields.name,
      description: fields.description ?? '',
      model: fields.model ?? null,
      system_prompt: fields.system_prompt ?? '',
      temperature: fields.temperature ?? null,
      tools: JSON.stringify(fields.tools ?? []),
      max_tool_iterations: fields.max_tool_iterations ?? 8,
      busy_policy: fields.busy_policy ?? 'enqueue',
      require_approval: JSON.stringify(fields.require_approval ?? []),
      approval_timeout_s: fields.approval_timeout_s ?? 3600,
      deleted_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Changes the workspace's own agent (never a global one); the caller has found it first. */
export async function updateWorkspaceAgent(db: Kysely<Database>, workspaceId: string, agentId: string, fields: AgentFields): Promise<Agent> {
  const { tools, require_approval, ...rest } = fields;
  return db
    .updateTable('agents')
    .set({
      ...rest,
      ...(tools ? { tools: JSON.stringify(tools) } : {}),
      ...(require_approval ? { require_approval: JSON.stringify(require_approval) } : {}),
      updated_at: new Date(),
    })
    .where('id', '=', agentId)
    .where('workspace_id', '=', workspaceId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Soft delete of the workspace's own agent: hidden and unusable for new threads from now on. */
export async function deleteWorkspaceAgent(db: Kysely<Database>, workspaceId: string, agentId: string): Promise<void> {
  await db
    .updateTable('agents')
    .set({ deleted_at: new Date(), updated_at: new Date() })
    .where('id', '=', agentId)
    .where('workspace_id', '=', workspaceId)
    .execute();
}
