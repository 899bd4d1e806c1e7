/**
 * Schemas of the resources and requests shared by WebSocket frames and the REST mirror: a
 * `thread.create` frame's payload and a `POST /v1/threads` body are the same schema, and so are
 * the results. The OpenAPI document is built from these too.
 */
import { LIMITS } from './limits.js';
import { schemaOf } from './typed-schema.js';
import type {
  SearchPayload, ThreadCreatePayload, ThreadDeletePayload, ThreadGetPayload, ThreadHistoryPayload, ThreadListPayload, ThreadUpdatePayload,
} from './frames.js';
import type { AgentCreateRequest, AgentUpdateRequest, ApprovalPostRequest, MessagePostRequest, ThreadPatchRequest } from './requests.js';
import type { MessageSendResult, ToolApprovePayload } from './frames.js';
import type {
  AgentDeletedResult, AgentListResult, AgentView, CancelResult, PendingToolCall, RunInfo, SearchResult, ThreadDeletedResult, ThreadListResult,
  ThreadView, TicketResult, ToolAnswerResult,
} from './results.js';

export const idSchema = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9_.:-]+$' } as const;
const seq = { type: 'integer', minimum: 0, maximum: LIMITS.maxSeq } as const;
const isoTime = { type: 'string', format: 'date-time' } as const;
const title = { type: 'string', minLength: 1, maxLength: 200 } as const;
const limit = (max: number) => ({ type: 'integer', minimum: 1, maximum: max }) as const;
const busyPolicy = { enum: ['enqueue', 'reject', 'interrupt'] } as const;
/** A tool call's id as the model gave it (providers choose their own format). */
export const toolCallIdSchema = { type: 'string', minLength: 1, maxLength: LIMITS.idLength } as const;
const toolNames = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: 64, uniqueItems: true } as const;
/** agents.approval_timeout_s: one second to seven days. */
const approvalTimeout = { type: 'integer', minimum: 1, maximum: 604_800 } as const;
const approvalReason = { type: 'string', maxLength: 2_000 } as const;

/** A request: unknown fields are refused, so a typo is an error. */
export function request<const P extends Record<string, object>, const R extends readonly (keyof P & string)[] = readonly []>(
  properties: P,
  required: R = [] as unknown as R,
) {
  return { type: 'object', properties, required, additionalProperties: false } as const;
}
/** A result: extra fields are allowed, so adding one is not a breaking change. */
export function resource<const P extends Record<string, object>, const R extends readonly (keyof P & string)[]>(properties: P, required: R) {
  return { type: 'object', properties, required, additionalProperties: true } as const;
}

// ---- requests ----------------------------------------------------------------------------------

export const requestSchemas = {
  'thread.create': schemaOf<ThreadCreatePayload>()(request({ title, agent_id: idSchema })),
  'thread.list': schemaOf<ThreadListPayload>()(request({
    cursor: { type: 'string', minLength: 1, maxLength: 512 },
    limit: limit(100),
    archived: { type: 'boolean' },
  })),
  'thread.get': schemaOf<ThreadGetPayload>()(request({ thread_id: idSchema }, ['thread_id'])),
  'thread.history': schemaOf<ThreadHistoryPayload>()(
    request({ thread_id: idSchema, before_seq: { type: 'integer', minimum: 1, maximum: LIMITS.maxSeq }, limit: limit(500) }, ['thread_id']),
  ),
  'thread.update': schemaOf<ThreadUpdatePayload>()(request({ thread_id: idSchema, title, archived: { type: 'boolean' } }, ['thread_id'])),
  /** `PATCH /v1/threads/:id`: thread.update without thread_id (it is in the path). */
  'thread.patch': schemaOf<ThreadPatchRequest>()(request({ title, archived: { type: 'boolean' } })),
  'thread.delete': schemaOf<ThreadDeletePayload>()(request({ thread_id: idSchema }, ['thread_id'])),
  search: schemaOf<SearchPayload>()(request({ q: { type: 'string', minLength: 1, maxLength: 500 }, limit: limit(50) }, ['q'])),
  'agent.create': schemaOf<AgentCreateRequest>()(request(
    {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      description: { type: 'string', maxLength: 500 },
      model: { type: 'string', minLength: 1, maxLength: 200 },
      system_prompt: { type: 'string', maxLength: 20_000 },
      temperature: { type: 'number', minimum: 0, maximum: 2 },
      tools: toolNames,
      max_tool_iterations: { type: 'integer', minimum: 1, maximum: 50 },
      busy_policy: busyPolicy,
      require_approval: toolNames,
      approval_timeout_s: approvalTimeout,
    },
    ['name'],
  )),
  'agent.update': schemaOf<AgentUpdateRequest>()(request({
    name: { type: 'string', minLength: 1, maxLength: 100 },
    description: { type: 'string', maxLength: 500 },
    model: { anyOf: [{ type: 'string', minLength: 1, maxLength: 200 }, { type: 'null' }] },
    system_prompt: { type: 'string', maxLength: 20_000 },
    temperature: { anyOf: [{ type: 'number', minimum: 0, maximum: 2 }, { type: 'null' }] },
    tools: toolNames,
    max_tool_iterations: { type: 'integer', minimum: 1, maximum: 50 },
    busy_policy: busyPolicy,
    require_approval: toolNames,
    approval_timeout_s: approvalTimeout,
  })),
  /** `POST /v1/threads/:id/messages`: message.send without thread_id (it is in the path). */
  'message.post': schemaOf<MessagePostRequest>()(request(
    {
      content: { type: 'string', minLength: 1, maxLength: LIMITS.contentChars },
      client_message_id: idSchema,
      on_busy: busyPolicy,
    },
    ['content'],
  )),
  'tool.approve': schemaOf<ToolApprovePayload>()(request(
    { run_id: idSchema, tool_call_id: toolCallIdSchema, approved: { type: 'boolean' }, reason: approvalReason },
    ['run_id', 'tool_call_id', 'approved'],
  )),
  /** `POST /v1/runs/:id/approvals`: tool.approve without run_id (it is in the path). */
  'run.approve': schemaOf<ApprovalPostRequest>()(request(
    { tool_call_id: toolCallIdSchema, approved: { type: 'boolean' }, reason: approvalReason },
    ['tool_call_id', 'approved'],
  )),
} as const;

// ---- resources and results ---------------------------------------------------------------------

export const threadSchema = schemaOf<ThreadView>()(resource(
  {
    id: idSchema,
    title: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    agent_id: idSchema,
    last_seq: seq,
    archived: { type: 'boolean' },
    created_at: isoTime,
    updated_at: isoTime,
  },
  ['id', 'title', 'agent_id', 'last_seq', 'archived', 'created_at', 'updated_at'],
));

export const agentSchema = schemaOf<AgentView>()(resource(
  {
    id: idSchema,
    workspace_id: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    name: { type: 'string' },
    description: { type: 'string' },
    model: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    system_prompt: { type: 'string' },
    temperature: { anyOf: [{ type: 'number' }, { type: 'null' }] },
    tools: { type: 'array', items: { type: 'string' } },
    max_tool_iterations: { type: 'integer' },
    busy_policy: busyPolicy,
    require_approval: { type: 'array', items: { type: 'string' } },
    approval_timeout_s: { type: 'integer' },
    created_at: isoTime,
    updated_at: isoTime,
  },
  // system_prompt is shown to workspace admins only.
  ['id', 'workspace_id', 'name', 'description', 'model', 'temperature', 'tools', 'max_tool_iterations', 'busy_policy', 'require_approval', 'approval_timeout_s'],
));

const pendingToolCall = schemaOf<PendingToolCall>()(resource(
  { kind: { enum: ['approval', 'client'] }, tool_call_id: toolCallIdSchema, tool_name: { type: 'string' }, arguments: {}, expires_at: isoTime },
  ['kind', 'tool_call_id', 'tool_name', 'arguments', 'expires_at'],
));

const storedEvent = resource({ type: { type: 'string' }, payload: { type: 'object' } }, ['type', 'payload']);

export const resultSchemas = {
  thread: threadSchema,
  threadList: schemaOf<ThreadListResult>()(resource(
    { threads: { type: 'array', items: threadSchema }, next_cursor: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
    ['threads', 'next_cursor'],
  )),
  threadDeleted: schemaOf<ThreadDeletedResult>()(resource({ thread_id: idSchema, deleted: { const: true } }, ['thread_id', 'deleted'])),
  // history and events carry stored events as {type, payload}; each payload's own schema is in schemas.ts.
  history: resource(
    { thread_id: idSchema, events: { type: 'array', items: storedEvent }, has_more: { type: 'boolean' } },
    ['thread_id', 'events', 'has_more'],
  ),
  events: resource(
    { thread_id: idSchema, events: { type: 'array', items: storedEvent }, last_seq: seq },
    ['thread_id', 'events', 'last_seq'],
  ),
  search: schemaOf<SearchResult>()(resource(
    {
      results: {
        type: 'array',
        items: resource(
          {
            thread_id: idSchema,
            thread_title: { anyOf: [{ type: 'string' }, { type: 'null' }] },
            message_id: idSchema,
            role: { enum: ['user', 'assistant'] },
            snippet: { type: 'string' },
            rank: { type: 'number' },
            created_at: isoTime,
          },
          ['thread_id', 'thread_title', 'message_id', 'role', 'snippet', 'rank', 'created_at'],
        ),
      },
    },
    ['results'],
  )),
  agent: agentSchema,
  agentList: schemaOf<AgentListResult>()(resource({ agents: { type: 'array', items: agentSchema } }, ['agents'])),
  agentDeleted: schemaOf<AgentDeletedResult>()(resource({ agent_id: idSchema, deleted: { const: true } }, ['agent_id', 'deleted'])),
  sent: schemaOf<MessageSendResult>()(resource(
    { thread_id: idSchema, message_id: idSchema, run_id: idSchema, deduplicated: { type: 'boolean' } },
    ['thread_id', 'message_id', 'run_id'],
  )),
  ticket: schemaOf<TicketResult>()(resource({ ticket: { type: 'string', minLength: 16 }, expires_at: isoTime }, ['ticket', 'expires_at'])),
  run: schemaOf<RunInfo>()(resource(
    {
      id: idSchema,
      thread_id: idSchema,
      agent_id: idSchema,
      status: { enum: ['queued', 'running', 'waiting', 'completed', 'cancelled', 'failed'] },
      created_at: isoTime,
      finished_at: { anyOf: [isoTime, { type: 'null' }] },
      pending: { type: 'array', items: pendingToolCall },
    },
    ['id', 'thread_id', 'agent_id', 'status', 'created_at', 'finished_at', 'pending'],
  )),
  toolAnswer: schemaOf<ToolAnswerResult>()(resource(
    { run_id: idSchema, tool_call_id: toolCallIdSchema, status: { enum: ['approved', 'denied', 'answered'] } },
    ['run_id', 'tool_call_id', 'status'],
  )),
  cancelled: schemaOf<CancelResult>()(resource({ run_id: idSchema, status: { enum: ['cancelled', 'cancelling'] } }, ['run_id', 'status'])),
  error: resource(
    { code: { type: 'string' }, message: { type: 'string' }, retry_after_ms: { type: 'integer', minimum: 0 } },
    ['code', 'message'],
  ),
} as const;
