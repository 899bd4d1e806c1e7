/**
 * Agents of a workspace. Members list and use them; only a token with the admin role creates,
 * updates or deletes them. Global agents (workspace_id null, e.g. the default) are read-only.
 */
import {
  deleteWorkspaceAgent, findVisibleAgent, insertAgent, listVisibleAgents, updateWorkspaceAgent, type AgentFields,
} from '../../db/agents.repository.js';
import type { Agent } from '../../db/schema.js';
import type { Principal } from '../auth.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';

/** The body of a create or update (the route's schema has checked it). */
export type AgentInput = AgentFields;

/**
 * An agent as `principal` may see it: the system prompt (often the workspace's own know-how) only
 * for admins; members see what they need to pick and use one (name, description, tools, policy).
 */
export function agentView(agent: Agent, principal: Principal, adminRole: string) {
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
    require_approval: agent.require_approval,
    approval_timeout_s: agent.approval_timeout_s,
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

/** `require_approval` names only tools the agent offers (after the change, for an update). */
function checkApproval(tools: string[], requireApproval: string[]): void {
  const outside = requireApproval.filter((name) => !tools.includes(name));
  if (outside.length > 0) {
    throw new RequestError(
      'invalid_request',
      `require_approval names ${outside.length > 1 ? 'tools' : 'a tool'} the agent does not offer: ${outside.join(', ')}. ` +
        `It must be a subset of tools (${tools.join(', ') || 'none'}).`,
    );
  }
}

export async function listAgents(services: GatewayServices, principal: Principal) {
  const rows = await listVisibleAgents(services.db, principal.workspaceId);
  return { agents: rows.map((row) => agentView(row, principal, services.adminRole)) };
}

/** The agent if the caller's workspace sees it (member or admin alike), else not_found. */
async function visibleAgent(services: GatewayServices, principal: Principal, agentId: string): Promise<Agent> {
  const agent = await findVisibleAgent(services.db, principal.workspaceId, agentId);
  if (!agent) throw new RequestError('not_found', `Agent ${agentId} was not found.`);
  return agent;
}

export async function getAgent(services: GatewayServices, principal: Principal, agentId: string) {
  return agentView(await visibleAgent(services, principal, agentId), principal, services.adminRole);
}

export async function createAgent(services: GatewayServices, principal: Principal, input: AgentInput & { name: string }) {
  requireAdmin(services, principal);
  checkTools(services, input.tools);
  checkApproval(input.tools ?? [], input.require_approval ?? []);
  const agent = await insertAgent(services.db, principal.workspaceId, input);
  return agentView(agent, principal, services.adminRole);
}

/** The workspace's own agent, for changes (global agents are not the workspace's to change). */
async function ownAgent(services: GatewayServices, principal: Principal, agentId: string): Promise<Agent> {
  const agent = await visibleAgent(services, principal, agentId);
  if (agent.workspace_id === null) throw new RequestError('forbidden', `Agent ${agentId} is built in and cannot be changed.`);
  return agent;
}

export async function updateAgent(services: GatewayServices, principal: Principal, agentId: string, input: AgentInput) {
  requireAdmin(services, principal);
  checkTools(services, input.tools);
  const current = await ownAgent(services, principal, agentId);
  checkApproval(input.tools ?? current.tools, input.require_approval ?? current.require_approval);
  const agent = await updateWorkspaceAgent(services.db, principal.workspaceId, agentId, input);
  return agentView(agent, principal, services.adminRole);
}

/** Soft delete: the agent disappears for new threads; threads bound to it keep working. */
export async function deleteAgent(services: GatewayServices, principal: Principal, agentId: string) {
  requireAdmin(services, principal);
  await ownAgent(services, principal, agentId);
  await deleteWorkspaceAgent(services.db, principal.workspaceId, agentId);
  return { agent_id: agentId, deleted: true as const };
}
