/**
 * Agents of a workspace. Members list and use them; only a token with the admin role creates,
 * updates or deletes them. Global agents (workspace_id null, e.g. the default) are read-only.
 */
import type { Selectable } from 'kysely';
import { newId } from '../../db/ids.js';
import type { AgentsTable } from '../../db/schema.js';
import type { Principal } from '../auth.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';

type AgentRow = Selectable<AgentsTable>;

export interface AgentInput {
  name?: string;
  description?: string;
  model?: string | null;
  system_prompt?: string;
  temperature?: number | null;
  tools?: string[];
  max_tool_iterations?: number;
  busy_policy?: 'enqueue' | 'reject' | 'interrupt';
}

/**
 * An agent as `principal` may see it: the system prompt (often the workspace's own know-how) only
 * for admins; members see what they need to pick and use one (name, description, tools, policy).
 */
export function agentView(agent: AgentRow, principal: Principal, adminRole: string) {
  const admin = principal.roles.includes(adminRole);
  return {
    id: agent.id,
    workspace_id: agent.workspace_id,
    name: agent.name,
    description: agent.description,
    model: agent.model,
    ...(admin ? { system_prompt: agent.system_prompt } : {}),
    temperature: agent.temperature,
    tools: agent.tools,
    max_tool_iterations: agent.max_tool_iterations,
    busy_policy: agent.busy_policy,
    created_at: agent.created_at.toISOString(),
    updated_at: agent.updated_at.toISOString(),
  };
}

function requireAdmin(services: GatewayServices, principal: Principal): void {
  if (!principal.roles.includes(services.adminRole)) {
    throw new RequestError('forbidden', `Managing agents needs the '${services.adminRole}' role.`);
  }
}

function checkTools(services: GatewayServices, tools: string[] | undefined): void {
  const unknown = (tools ?? []).filter((name) => !services.toolNames.includes(name));
  if (unknown.length > 0) {
    throw new RequestError(
      'invalid_request',
      `Unknown tool${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. Available: ${services.toolNames.join(', ')}.`,
    );
  }
}

function visible(services: GatewayServices, workspaceId: string) {
  return services.db
    .selectFrom('agents')
    .selectAll()
    .where('deleted_at', 'is', null)
    .where((eb) => eb.or([eb('workspace_id', '=', workspaceId), eb('workspace_id', 'is', null)]));
}

export async function listAgents(services: GatewayServices, principal: Principal) {
  const rows = await visible(services, principal.workspaceId).orderBy('created_at').orderBy('id').execute();
  return { agents: rows.map((row) => agentView(row, principal, services.adminRole)) };
}

export async function getAgent(services: GatewayServices, principal: Principal, agentId: string) {
  const agent = await visible(services, principal.workspaceId).where('id', '=', agentId).executeTakeFirst();
  if (!agent) throw new RequestError('not_found', `Agent ${agentId} was not found.`);
  return agentView(agent, principal, services.adminRole);
}

export async function createAgent(services: GatewayServices, principal: Principal, input: AgentInput & { name: string }) {
  requireAdmin(services, principal);
  checkTools(services, input.tools);
  const agent = await services.db
    .insertInto('agents')
    .values({
      id: newId('ag'),
      workspace_id: principal.workspaceId,
      name: input.name,
      description: input.description ?? '',
      model: input.model ?? null,
      system_prompt: input.system_prompt ?? '',
      temperature: input.temperature ?? null,
      tools: JSON.stringify(input.tools ?? []),
      max_tool_iterations: input.max_tool_iterations ?? 8,
      busy_policy: input.busy_policy ?? 'enqueue',
      deleted_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return agentView(agent, principal, services.adminRole);
}

/** The workspace's own agent, for changes (global agents are not the workspace's to change). */
async function ownAgent(services: GatewayServices, principal: Principal, agentId: string): Promise<AgentRow> {
  const agent = await visible(services, principal.workspaceId).where('id', '=', agentId).executeTakeFirst();
  if (!agent) throw new RequestError('not_found', `Agent ${agentId} was not found.`);
  if (agent.workspace_id === null) throw new RequestError('forbidden', `Agent ${agentId} is built in and cannot be changed.`);
  return agent;
}

export async function updateAgent(services: GatewayServices, principal: Principal, agentId: string, input: AgentInput) {
  requireAdmin(services, principal);
  checkTools(services, input.tools);
  await ownAgent(services, principal, agentId);
  const { tools, ...rest } = input;
  const agent = await services.db
    .updateTable('agents')
    .set({ ...rest, ...(tools ? { tools: JSON.stringify(tools) } : {}), updated_at: new Date() })
    .where('id', '=', agentId)
    .where('workspace_id', '=', principal.workspaceId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return agentView(agent, principal, services.adminRole);
}

/** Soft delete: the agent disappears for new threads; threads bound to it keep working. */
export async function deleteAgent(services: GatewayServices, principal: Principal, agentId: string) {
  requireAdmin(services, principal);
  await ownAgent(services, principal, agentId);
  await services.db
    .updateTable('agents')
    .set({ deleted_at: new Date(), updated_at: new Date() })
    .where('id', '=', agentId)
    .where('workspace_id', '=', principal.workspaceId)
    .execute();
  return { agent_id: agentId, deleted: true as const };
}
