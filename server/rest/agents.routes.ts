/** Agents of the caller's workspace; creating, changing and deleting one needs the admin role. */
import { requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { createAgent, deleteAgent, getAgent, listAgents, updateAgent } from '../operations/agents.js';
import { json, ok, refusal } from '../http/route.js';
import { route } from './deps.js';
import { idPath } from './params.js';

const notFound = refusal('No such agent visible to this workspace.');
const adminOnly = refusal("The token lacks the admin role (JWT_ADMIN_ROLE, default 'admin'), or the agent is built in and read-only.");
const unknownTool = 'The body is not valid JSON, breaks the schema, names an unknown tool, or require_approval names a tool outside tools.';

export const agentRoutes = [
  route({
    method: 'get',
    path: '/v1/agents',
    operationId: 'listAgents',
    tags: ['agents'],
    summary: 'List agents',
    description: 'The workspace\'s agents and the built-in ones (workspace_id null).',
    auth: 'bearer',
    cors: true,
    responses: { 200: json(resultSchemas.agentList, 'Every agent visible to the workspace.') },
    handler: async ({ principal }, { services }) => ok(await listAgents(services, principal)),
  }),
  route({
    method: 'post',
    path: '/v1/agents',
    operationId: 'createAgent',
    tags: ['agents'],
    summary: 'Create an agent (admin)',
    description: 'Creates an agent in the caller\'s workspace. Calls to the tools in `require_approval` (a subset of `tools`) wait for the thread owner\'s approval, up to `approval_timeout_s` (default 3600). Needs the admin role.',
    auth: 'bearer',
    cors: true,
    body: { schema: requestSchemas['agent.create'], description: 'The new agent; `name` is required.' },
    responses: { 201: json(resultSchemas.agent, 'The new agent.'), 400: refusal(unknownTool), 403: adminOnly },
    handler: async ({ principal, body }, { services }) => ok(await createAgent(services, principal, body), 201),
  }),
  route({
    method: 'get',
    path: '/v1/agents/:id',
    operationId: 'getAgent',
    tags: ['agents'],
    summary: 'Get an agent',
    description: 'One agent visible to the workspace.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: { 200: json(resultSchemas.agent, 'The agent.'), 404: notFound },
    handler: async ({ principal, params }, { services }) => ok(await getAgent(services, principal, params.id)),
  }),
  route({
    method: 'patch',
    path: '/v1/agents/:id',
    operationId: 'updateAgent',
    tags: ['agents'],
    summary: 'Update an agent (admin)',
    description: 'Changes the given fields of one of the workspace\'s own agents; `null` clears model or temperature. Needs the admin role.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    body: { schema: requestSchemas['agent.update'], description: 'The fields to change.' },
    responses: { 200: json(resultSchemas.agent, 'The updated agent.'), 400: refusal(unknownTool), 403: adminOnly, 404: notFound },
    handler: async ({ principal, params, body }, { services }) => ok(await updateAgent(services, principal, params.id, body)),
  }),
  route({
    method: 'delete',
    path: '/v1/agents/:id',
    operationId: 'deleteAgent',
    tags: ['agents'],
    summary: 'Delete an agent (admin)',
    description: 'Soft delete: the agent disappears for new threads; threads bound to it keep working. Needs the admin role.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: { 200: json(resultSchemas.agentDeleted, 'The agent is deleted.'), 403: adminOnly, 404: notFound },
    handler: async ({ principal, params }, { services }) => ok(await deleteAgent(services, principal, params.id)),
  }),
];
