/**
 * The named schemas of the OpenAPI document. The protocol's objects are used as they are (no
 * copies, nothing stripped): a route that answers with one of these gets a `$ref` to its name, so
 * the document cannot drift from what the validators enforce.
 */
import { idSchema, requestSchemas, resultSchemas } from '../../protocol/resources.js';

/** `GET /health`, `/live`. */
export const healthSchema = { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] } as const;
/** `GET /ready` when ready. */
export const readySchema = { type: 'object', properties: { status: { const: 'ready' } }, required: ['status'] } as const;
/** `GET /ready` when a dependency is down. */
export const notReadySchema = {
  type: 'object',
  properties: { status: { const: 'unavailable' }, reason: { type: 'string' } },
  required: ['status', 'reason'],
} as const;
/** `GET /dev/token`. */
export const devTokenSchema = {
  type: 'object',
  properties: { token: { type: 'string', minLength: 1 }, expires_at: { type: 'string', format: 'date-time' } },
  required: ['token', 'expires_at'],
} as const;

export const components: Record<string, object> = {
  Id: idSchema,
  ThreadCreateRequest: requestSchemas['thread.create'],
  ThreadPatchRequest: requestSchemas['thread.patch'],
  MessagePostRequest: requestSchemas['message.post'],
  ApprovalRequest: requestSchemas['run.approve'],
  AgentCreateRequest: requestSchemas['agent.create'],
  AgentUpdateRequest: requestSchemas['agent.update'],
  Thread: resultSchemas.thread,
  ThreadList: resultSchemas.threadList,
  ThreadDeleted: resultSchemas.threadDeleted,
  ThreadHistory: resultSchemas.history,
  EventPage: resultSchemas.events,
  MessageAccepted: resultSchemas.sent,
  RunCancelled: resultSchemas.cancelled,
  Run: resultSchemas.run,
  ToolAnswer: resultSchemas.toolAnswer,
  WsTicket: resultSchemas.ticket,
  SearchResults: resultSchemas.search,
  Agent: resultSchemas.agent,
  AgentList: resultSchemas.agentList,
  AgentDeleted: resultSchemas.agentDeleted,
  Error: resultSchemas.error,
  Health: healthSchema,
  Ready: readySchema,
  NotReady: notReadySchema,
  DevToken: devTokenSchema,
};
