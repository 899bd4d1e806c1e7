/**
 * JSON Schemas (draft-07) of every v1 frame, both directions. The TypeScript types beside them are
 * in `frames.ts`. Inbound payloads reject unknown fields so a typo is an error, not silently
 * ignored; outbound schemas allow extra fields so adding one is not a breaking change.
 */
import { ErrorCodes, RunErrorCodes } from './codes.js';
import { LIMITS } from './limits.js';
import { requestSchemas, resultSchemas } from './resources.js';

export { LIMITS };

const id = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9_.:-]+$' } as const;
const seq = { type: 'integer', minimum: 0, maximum: LIMITS.maxSeq } as const;
const isoTime = { type: 'string', format: 'date-time' } as const;

function strictObject(properties: Record<string, object>, required: string[] = []) {
  return { type: 'object', properties, required, additionalProperties: false } as const;
}
function openObject(properties: Record<string, object>, required: string[] = []) {
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
  'message.send': strictObject(
    {
      content: { type: 'string', minLength: 1, maxLength: LIMITS.contentChars },
      thread_id: id,
      agent_id: id,
      client_message_id: id,
      on_busy: { enum: ['enqueue', 'reject', 'interrupt'] },
    },
    ['content'],
  ),
  'thread.create': requestSchemas['thread.create'],
  'thread.list': requestSchemas['thread.list'],
  'thread.get': requestSchemas['thread.get'],
  'thread.history': requestSchemas['thread.history'],
  'thread.update': requestSchemas['thread.update'],
  'thread.delete': requestSchemas['thread.delete'],
  search: requestSchemas.search,
  'thread.subscribe': strictObject({ thread_id: id, after_seq: seq }, ['thread_id']),
  'thread.unsubscribe': strictObject({ thread_id: id }, ['thread_id']),
  'run.cancel': strictObject({ run_id: id }, ['run_id']),
  'auth.refresh': strictObject({ token: { type: 'string', minLength: 1, maxLength: LIMITS.tokenChars } }, ['token']),
  ping: strictObject({}),
} as const;

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

function eventPayload(properties: Record<string, object>, required: string[], inRun: boolean) {
  return openObject(
    { thread_id: id, run_id: id, seq: { type: 'integer', minimum: 1 }, timestamp: isoTime, ...properties },
    ['thread_id', 'seq', 'timestamp', ...(inRun ? ['run_id'] : []), ...required],
  );
}

export const eventPayloadSchemas = {
  message_created: eventPayload({ message: messageView }, ['message'], false),
  agent_started: eventPayload({ agent_id: id, agent_name: { type: 'string' } }, ['agent_id', 'agent_name'], true),
  agent_thinking: eventPayload({ attempt: { type: 'integer', minimum: 1 }, message_id: id, restarted: { type: 'boolean' } }, [], true),
  message_delta: eventPayload({ message_id: id, delta: { type: 'string', minLength: 1 } }, ['message_id', 'delta'], true),
  tool_executing: eventPayload(
    { tool_call_id: { type: 'string', minLength: 1 }, name: { type: 'string', minLength: 1 }, arguments: {} },
    ['tool_call_id', 'name', 'arguments'],
    true,
  ),
  tool_completed: eventPayload(
    {
      tool_call_id: { type: 'string', minLength: 1 },
      name: { type: 'string', minLength: 1 },
      result: { type: 'string' },
      is_error: { type: 'boolean' },
      duration_ms: { type: 'number', minimum: 0 },
    },
    ['tool_call_id', 'name', 'result', 'is_error', 'duration_ms'],
    true,
  ),
  agent_completed: eventPayload(
    {
      status: { enum: ['completed', 'cancelled', 'failed'] },
      message: messageView,
      usage,
      error: openObject(
        { code: { enum: Object.keys(RunErrorCodes) }, message: { type: 'string' } },
        ['code', 'message'],
      ),
    },
    ['status', 'message'],
    true,
  ),
} as const;

export const serverPayloadSchemas = {
  'session.ready': openObject(
    {
      connection_id: id,
      user_id: { type: 'string', minLength: 1 },
      workspace_id: { type: 'string', minLength: 1 },
      protocol: { const: 'chat.v1' },
      server_time: isoTime,
      token_expires_at: isoTime,
    },
    ['connection_id', 'user_id', 'workspace_id', 'protocol', 'server_time', 'token_expires_at'],
  ),
  ack: { type: 'object' },
  error: openObject(
    {
      code: { enum: Object.keys(ErrorCodes) },
      message: { type: 'string', minLength: 1 },
      retryable: { type: 'boolean' },
      retry_after_ms: { type: 'integer', minimum: 0 },
      last_seq: seq,
    },
    ['code', 'message', 'retryable'],
  ),
  'auth.expiring': openObject({ expires_at: isoTime }, ['expires_at']),
  pong: { type: 'object' },
  thread_deleted: openObject({ thread_id: id, timestamp: isoTime }, ['thread_id', 'timestamp']),
  ...eventPayloadSchemas,
} as const;

/** Results carried by `ack`, per request type, for clients and tests. */
export const ackResultSchemas = {
  'message.send': openObject(
    { thread_id: id, message_id: id, run_id: id, deduplicated: { type: 'boolean' } },
    ['thread_id', 'message_id', 'run_id'],
  ),
  'thread.subscribe': openObject({ thread_id: id, last_seq: seq }, ['thread_id', 'last_seq']),
  'thread.unsubscribe': openObject({ thread_id: id }, ['thread_id']),
  'run.cancel': resultSchemas.cancelled,
  'thread.create': resultSchemas.thread,
  'thread.list': resultSchemas.threadList,
  'thread.get': resultSchemas.thread,
  'thread.history': resultSchemas.history,
  'thread.update': resultSchemas.thread,
  'thread.delete': resultSchemas.threadDeleted,
  search: resultSchemas.search,
  'auth.refresh': openObject({ token_expires_at: isoTime }, ['token_expires_at']),
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
