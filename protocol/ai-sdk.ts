/**
 * The AI SDK's UI message stream as this server speaks it (`POST /v1/ai-sdk/chat`, the answer to
 * the `ai` package's `DefaultChatTransport`): the request it sends, with its JSON Schema (checked
 * against the type by tsc, validated by the route table with ajv, published in the OpenAPI
 * document), and the chunks the server answers with. Only chunk types and fields that the `ai`
 * 6.x and 7.x lines both accept are sent (7.x refuses unknown fields in a chunk).
 */
import { idSchema, requestSchemas } from './resources.js';
import { schemaOf } from './typed-schema.js';

// ---- the request -------------------------------------------------------------------------------

/**
 * One part of a UI message as the client holds it. Only what the server reads is declared: the
 * text of a user message, and an assistant message's tool part answered with
 * `addToolApprovalResponse` (`state: "approval-responded"`, `approval: {id, approved, reason?}`).
 * Everything else a part carries (inputs, outputs, provider metadata) is accepted and not read.
 */
export interface AiSdkUIPart {
  /** `text`, `step-start`, `tool-<name>`, `dynamic-tool`, `reasoning`, `file`, `data-<name>`, ... */
  type: string;
  text?: string;
  toolCallId?: string;
  state?: string;
  approval?: { id: string; approved?: boolean; reason?: string };
}

export interface AiSdkUIMessage {
  id: string;
  role: 'system' | 'user' | 'assistant';
  parts: AiSdkUIPart[];
}

/**
 * `POST /v1/ai-sdk/chat`: what `DefaultChatTransport` sends. The chat id is a thread id of the
 * caller's; the server reads only the last message (the new user message, or the assistant message
 * carrying approval answers), since the thread's history is in its store.
 */
export interface AiSdkChatRequest {
  /** The chat: the caller's thread with this id, created on first use. */
  id: string;
  messages: AiSdkUIMessage[];
  /** `regenerate-message` is refused: a stored answer is never replaced. */
  trigger: 'submit-message' | 'regenerate-message';
  /** Set by the transport when a user message is edited (refused) or tool answers continue an assistant message. */
  messageId?: string;
  /** The agent of a chat created by this request (the transport's `body` option); default: the default agent. */
  agent_id?: string;
}

/** The largest body (a request carries the chat's whole history, which the server does not read). */
export const AI_SDK_MAX_BODY_BYTES = 8 * 1024 * 1024;

const uiPart = schemaOf<AiSdkUIPart>()({
  type: 'object',
  properties: {
    type: { type: 'string', minLength: 1, maxLength: 200 },
    text: { type: 'string' },
    toolCallId: { type: 'string' },
    state: { type: 'string' },
    approval: {
      type: 'object',
      properties: { id: { type: 'string' }, approved: { type: 'boolean' }, reason: requestSchemas['run.approve'].properties.reason },
      required: ['id'],
      additionalProperties: true,
    },
  },
  required: ['type'],
  additionalProperties: true,
});

const uiMessage = schemaOf<AiSdkUIMessage>()({
  type: 'object',
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 200 },
    role: { enum: ['system', 'user', 'assistant'] },
    parts: { type: 'array', items: uiPart },
  },
  required: ['id', 'role', 'parts'],
  additionalProperties: true,
});

/**
 * The request's schema. Open at the top (a transport's `body` option adds fields the application
 * chose; they are ignored) and in messages and parts (the SDK's fields the server does not read).
 */
export const aiSdkChatRequestSchema = schemaOf<AiSdkChatRequest>()({
  type: 'object',
  properties: {
    id: idSchema,
    messages: { type: 'array', items: uiMessage, minItems: 1 },
    trigger: { enum: ['submit-message', 'regenerate-message'] },
    messageId: { type: 'string', minLength: 1, maxLength: 200 },
    agent_id: idSchema,
  },
  required: ['id', 'messages', 'trigger'],
  additionalProperties: true,
});

// ---- the answer --------------------------------------------------------------------------------

/** Why a response ended (the `finish` chunk). */
export type AiSdkFinishReason = 'stop' | 'tool-calls' | 'error' | 'other';

/** The chunks the server sends, each one `data: <json>` line of the `text/event-stream` answer. */
export type AiSdkChunk =
  | { type: 'start'; messageId: string }
  | { type: 'start-step' }
  | { type: 'finish-step' }
  | { type: 'text-start'; id: string }
  | { type: 'text-delta'; id: string; delta: string }
  | { type: 'text-end'; id: string }
  | { type: 'tool-input-available'; toolCallId: string; toolName: string; input: unknown }
  | { type: 'tool-approval-request'; approvalId: string; toolCallId: string }
  | { type: 'tool-output-available'; toolCallId: string; output: unknown }
  | { type: 'tool-output-error'; toolCallId: string; errorText: string }
  | { type: 'tool-output-denied'; toolCallId: string }
  | { type: 'error'; errorText: string }
  | { type: 'finish'; finishReason: AiSdkFinishReason };

/** The response headers the SDK's transports look for. */
export const AI_SDK_STREAM_HEADERS = { 'x-vercel-ai-ui-message-stream': 'v1' } as const;

/** The body's last line. */
export const AI_SDK_DONE = '[DONE]';
