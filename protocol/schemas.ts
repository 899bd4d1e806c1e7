/**
 * JSON Schemas (draft-07) of every v1 frame, both directions. The TypeScript types beside them are
 * in `frames.ts`. Inbound payloads reject unknown fields so a typo is an error, not silently
 * ignored; outbound schemas allow extra fields so adding one is not a breaking change.
 */
import { ErrorCodes, RunErrorCodes, type ErrorCode, type RunErrorCode } from './codes.js';
import { LIMITS } from './limits.js';
import { requestSchemas, resultSchemas, toolCallIdSchema } from './resources.js';
import { schemaOf, type Same } from './typed-schema.js';
import type {
  AuthRefreshPayload, ClientPayloads, EventBase, EventPayloads, MessageSendPayload, MessageSendResult, PingPayload, RunCancelPayload,
  ServerPayloads, ThreadSubscribePayload, ThreadSubscribeResult, ThreadUnsubscribePayload,
} from './frames.js';
import type { RefreshResult, UnsubscribeResult } from './results.js';

export { LIMITS };

const id = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9_.:-]+$' } as const;
const seq = { type: 'integer', minimum: 0, maximum: LIMITS.maxSeq } as const;
const isoTime = { type: 'string', format: 'date-time' } as const;

function strictObject<const P extends Record<string, object>, const R extends readonly (keyof P & string)[] = readonly []>(
  properties: P,
  required: R = [] as unknown as R,
) {
  return { type: 'object', properties, required, additionalProperties: false } as const;
}
function openObject<const P extends Record<string, object>, const R extends readonly (keyof P & string)[] = readonly []>(
  properties: P,
  required: R = [] as unknown as R,
) {
  return { type: 'object', properties, required, additionalProperties: true } as const;
}

// ---- client → server ---------------------------------------------------------------------------

/** The envelope every client frame shares; the payload is checked by the type's own schema. */
export const clientEnvelopeSchema = {
  type: 'object',
  properties: {
    type: { type: 'string', minLength: 1, maxLength: 64 },
    id: { type: 'string', minLength: 1, maxLength: LIMITS.idLength },
    payload: { type: 'object', default: {} },
  },
  required: ['type'],
  additionalProperties: false,
} as const;

export const clientPayloadSchemas = {
  'message.send': schemaOf<MessageSendPayload>()(strictObject(
    {
      content: { type: 'string', minLength: 1, maxLength: LIMITS.contentChars },
      thread_id: id,
      agent_id: id,
      client_message_id: id,
      on_busy: { enum: ['enqueue', 'reject', 'interrupt'] },
    },
    ['content'],
  )),
  'thread.create': requestSchemas['thread.create'],
  'thread.list': requestSchemas['thread.list'],
  'thread.get': requestSchemas['thread.get'],
  'thread.history': requestSchemas['thread.history'],
  'thread.update': requestSchemas['thread.update'],
  'thread.delete': requestSchemas['thread.delete'],
  search: requestSchemas.search,
  'thread.subscribe': schemaOf<ThreadSubscribePayload>()(strictObject({ thread_id: id, after_seq: seq }, ['thread_id'])),
  'thread.unsubscribe': schemaOf<ThreadUnsubscribePayload>()(strictObject({ thread_id: id }, ['thread_id'])),
  'run.cancel': schemaOf<RunCancelPayload>()(strictObject({ run_id: id }, ['run_id'])),
  'tool.approve': requestSchemas['tool.approve'],
  'auth.refresh': schemaOf<AuthRefreshPayload>()(
    strictObject({ token: { type: 'string', minLength: 1, maxLength: LIMITS.tokenChars } }, ['token']),
  ),
  ping: schemaOf<PingPayload>()(strictObject({})),
} as const;
// A frame type without a schema, or a schema without a type, does not compile.
true satisfies Same<keyof typeof clientPayloadSchemas, keyof ClientPayloads>;

// ---- server → client ---------------------------------------------------------------------------

const messageView = openObject(
  {
    id,
    role: { enum: ['user', 'assistant', 'tool', 'system'] },
    content: { type: 'string' },
    run_id: { anyOf: [id, { type: 'null' }] },
    created_at: isoTime,
  },
  ['id', 'role', 'content'],
);
const usage = openObject(
  { prompt_tokens: seq, completion_tokens: seq, total_tokens: seq },
  ['prompt_tokens', 'completion_tokens'],
);

const eventBase = { thread_id: id, run_id: id, seq: { type: 'integer', minimum: 1 }, timestamp: isoTime } as const;

/** A thread event's payload: its fields beside thread_id, seq and timestamp (and run_id, optional). */
function threadEvent<const P extends Record<string, object>, const R extends readonly (keyof P & string)[]>(properties: P, required: R) {
  return openObject({ ...eventBase, ...properties }, ['thread_id', 'seq', 'timestamp', ...required]);
}
/** The payload of an event of a run: run_id is required. */
function runEvent<const P extends Record<string, object>, const R extends readonly (keyof P & string)[]>(properties: P, required: R) {
  return openObject({ ...eventBase, ...properties }, ['thread_id', 'seq', 'timestamp', 'run_id', ...required]);
}

/** What a thread event's payload carries (type-checked against its schema below). */
type ThreadEventPayload<T extends keyof EventPayloads> = EventBase & EventPayloads[T];
type RunEventPayload<T extends keyof EventPayloads> = EventBase & { run_id: string } & EventPayloads[T];

/** approval_requested and client_tool_requested: the call the run waits on. */
const toolCallRequest = { tool_call_id: toolCallIdSchema, tool_name: { type: 'string', minLength: 1 }, arguments: {}, expires_at: isoTime } as const;
const toolCallRequired = ['tool_call_id', 'tool_name', 'arguments', 'expires_at'] as const;

export const eventPayloadSchemas = {
  message_created: schemaOf<ThreadEventPayload<'message_created'>>()(threadEvent({ message: messageView }, ['message'])),
  agent_started: schemaOf<RunEventPayload<'agent_started'>>()(runEvent({ agent_id: id, agent_name: { type: 'string' } }, ['agent_id', 'agent_name'])),
  agent_thinking: schemaOf<RunEventPayload<'agent_thinking'>>()(
    runEvent({ attempt: { type: 'integer', minimum: 1 }, message_id: id, restarted: { type: 'boolean' } }, []),
  ),
  message_delta: schemaOf<RunEventPayload<'message_delta'>>()(runEvent({ message_id: id, delta: { type: 'string', minLength: 1 } }, ['message_id', 'delta'])),
  tool_executing: schemaOf<RunEventPayload<'tool_executing'>>()(runEvent(
    { tool_call_id: { type: 'string', minLength: 1 }, name: { type: 'string', minLength: 1 }, arguments: {} },
    ['tool_call_id', 'name', 'arguments'],
  )),
  tool_completed: schemaOf<RunEventPayload<'tool_completed'>>()(runEvent(
    {
      tool_call_id: { type: 'string', minLength: 1 },
      name: { type: 'string', minLength: 1 },
      result: { type: 'string' },
      is_error: { type: 'boolean' },
      duration_ms: { type: 'number', minimum: 0 },
    },
    ['tool_call_id', 'name', 'result', 'is_error', 'duration_ms'],
  )),
  approval_requested: schemaOf<RunEventPayload<'approval_requested'>>()(runEvent(toolCallRequest, toolCallRequired)),
  approval_resolved: schemaOf<RunEventPayload<'approval_resolved'>>()(runEvent(
    {
      tool_call_id: toolCallIdSchema,
      tool_name: { type: 'string', minLength: 1 },
      status: { enum: ['approved', 'denied', 'expired', 'cancelled'] },
      reason: { type: 'string' },
    },
    ['tool_call_id', 'tool_name', 'status'],
  )),
  client_tool_requested: schemaOf<RunEventPayload<'client_tool_requested'>>()(runEvent(toolCallRequest, toolCallRequired)),
  agent_completed: schemaOf<RunEventPayload<'agent_completed'>>()(runEvent(
    {
      status: { enum: ['completed', 'cancelled', 'failed'] },
      message: messageView,
      usage,
      error: openObject(
        { code: { enum: Object.keys(RunErrorCodes) as RunErrorCode[] }, message: { type: 'string' } },
        ['code', 'message'],
      ),
    },
    ['status', 'message'],
  )),
} as const;
// An event type without a schema, or a schema without a type, does not compile.
true satisfies Same<keyof typeof eventPayloadSchemas, keyof EventPayloads>;

export const serverPayloadSchemas = {
  'session.ready': schemaOf<ServerPayloads['session.ready']>()(openObject(
    {
      connection_id: id,
      user_id: { type: 'string', minLength: 1 },
      workspace_id: { type: 'string', minLength: 1 },
      protocol: { const: 'chat.v1' },
      server_time: isoTime,
      token_expires_at: isoTime,
    },
    ['connection_id', 'user_id', 'workspace_id', 'protocol', 'server_time', 'token_expires_at'],
  )),
  ack: schemaOf<ServerPayloads['ack']>()({ type: 'object' }),
  error: schemaOf<ServerPayloads['error']>()(openObject(
    {
      code: { enum: Object.keys(ErrorCodes) as ErrorCode[] },
      message: { type: 'string', minLength: 1 },
      retryable: { type: 'boolean' },
      retry_after_ms: { type: 'integer', minimum: 0 },
      last_seq: seq,
    },
    ['code', 'message', 'retryable'],
  )),
  'auth.expiring': schemaOf<ServerPayloads['auth.expiring']>()(openObject({ expires_at: isoTime }, ['expires_at'])),
  pong: schemaOf<ServerPayloads['pong']>()({ type: 'object' }),
  thread_deleted: schemaOf<ServerPayloads['thread_deleted']>()(openObject({ thread_id: id, timestamp: isoTime }, ['thread_id', 'timestamp'])),
  ...eventPayloadSchemas,
} as const;
true satisfies Same<keyof typeof serverPayloadSchemas, keyof ServerPayloads | keyof EventPayloads>;

/** Results carried by `ack`, per request type, for clients and tests. */
export const ackResultSchemas = {
  'message.send': schemaOf<MessageSendResult>()(openObject(
    { thread_id: id, message_id: id, run_id: id, deduplicated: { type: 'boolean' } },
    ['thread_id', 'message_id', 'run_id'],
  )),
  'thread.subscribe': schemaOf<ThreadSubscribeResult>()(openObject({ thread_id: id, last_seq: seq }, ['thread_id', 'last_seq'])),
  'thread.unsubscribe': schemaOf<UnsubscribeResult>()(openObject({ thread_id: id }, ['thread_id'])),
  'run.cancel': resultSchemas.cancelled,
  'tool.approve': resultSchemas.toolAnswer,
  'thread.create': resultSchemas.thread,
  'thread.list': resultSchemas.threadList,
  'thread.get': resultSchemas.thread,
  'thread.history': resultSchemas.history,
  'thread.update': resultSchemas.thread,
  'thread.delete': resultSchemas.threadDeleted,
  search: resultSchemas.search,
  'auth.refresh': schemaOf<RefreshResult>()(openObject({ token_expires_at: isoTime }, ['token_expires_at'])),
} as const;

export const serverEnvelopeSchema = {
  type: 'object',
  properties: {
    type: { enum: Object.keys(serverPayloadSchemas) },
    id: { type: 'string' },
    payload: { type: 'object' },
  },
  required: ['type', 'payload'],
  additionalProperties: false,
} as const;
