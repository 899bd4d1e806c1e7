/**
 * AG-UI 1.0 on this server (docs/agui.md): the `RunAgentInput` that `POST /v1/agui` and the
 * `agui.run` frame take, and the client frames of the `agui.v1` WebSocket subprotocol, as JSON
 * Schemas ajv validates with and the OpenAPI document shows. The input schema follows
 * @ag-ui/core's `RunAgentInputSchema`: objects stay open (unknown fields pass, as there), the
 * thread id is one of ours. test/agui-schemas.test.ts checks its type against @ag-ui/core's.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { LIMITS } from './limits.js';

/** The WebSocket subprotocol whose frames are bare AG-UI events. */
export const AGUI_SUBPROTOCOL = 'agui.v1';

/** The largest `POST /v1/agui` body: a RunAgentInput carries the client's message history. */
export const AGUI_MAX_BODY_BYTES = 4 * 1024 * 1024;

const id = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9_.:-]+$' } as const;
const seq = { type: 'integer', minimum: 0, maximum: LIMITS.maxSeq } as const;
const metadata = { type: 'object' } as const;
/** Any JSON value but null (AG-UI's opaque fields). */
const opaque = { not: { type: 'null' } } as const;

const source = {
  oneOf: [
    { type: 'object', properties: { type: { const: 'data' }, value: { type: 'string' }, mimeType: { type: 'string' } }, required: ['type', 'value', 'mimeType'] },
    { type: 'object', properties: { type: { const: 'url' }, value: { type: 'string' }, mimeType: { type: 'string' } }, required: ['type', 'value'] },
    {
      type: 'object',
      properties: { type: { const: 'file' }, value: { type: 'string' }, provider: { type: 'string' }, mimeType: { type: 'string' } },
      required: ['type', 'value'],
    },
  ],
} as const;
const media = <const T extends string>(type: T) =>
  ({ type: 'object', properties: { type: { const: type }, id: { type: 'string' }, source, metadata: {} }, required: ['type', 'source'] }) as const;
const content = {
  anyOf: [
    { type: 'string' },
    {
      type: 'array',
      items: {
        oneOf: [
          { type: 'object', properties: { type: { const: 'text' }, id: { type: 'string' }, text: { type: 'string' }, metadata: {} }, required: ['type', 'text'] },
          media('image'), media('audio'), media('video'), media('document'),
        ],
      },
    },
  ],
} as const;

/** The fields every message has; `role` is added per kind. */
const common = { subagentRunId: { type: 'string' }, id: { type: 'string' }, metadata } as const;
const toolCall = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: { type: 'object', properties: { name: { type: 'string' }, arguments: { type: 'string' } }, required: ['name', 'arguments'] },
    encryptedValue: { type: 'string' },
    metadata,
  },
  required: ['id', 'type', 'function'],
} as const;
const textMessage = <const R extends string>(role: R) =>
  ({
    type: 'object',
    properties: { ...common, role: { const: role }, name: { type: 'string' }, encryptedValue: { type: 'string' }, content: { type: 'string' } },
    required: ['id', 'role', 'content'],
  }) as const;

const message = {
  oneOf: [
    textMessage('developer'),
    textMessage('system'),
    {
      type: 'object',
      properties: {
        ...common, role: { const: 'assistant' }, name: { type: 'string' }, encryptedValue: { type: 'string' }, content: { type: 'string' },
        toolCalls: { type: 'array', items: toolCall },
      },
      required: ['id', 'role'],
    },
    { type: 'object', properties: { ...common, role: { const: 'user' }, name: { type: 'string' }, encryptedValue: { type: 'string' }, content }, required: ['id', 'role', 'content'] },
    {
      type: 'object',
      properties: { ...common, role: { const: 'tool' }, content, toolCallId: { type: 'string' }, error: { type: 'string' }, encryptedValue: { type: 'string' } },
      required: ['id', 'role', 'content', 'toolCallId'],
    },
    { type: 'object', properties: { ...common, role: { const: 'activity' }, activityType: { type: 'string' }, content: { type: 'object' } }, required: ['id', 'role', 'activityType', 'content'] },
    { type: 'object', properties: { ...common, role: { const: 'reasoning' }, content: { type: 'string' }, encryptedValue: { type: 'string' } }, required: ['id', 'role', 'content'] },
  ],
} as const;

/** AG-UI's RunAgentInput: the thread (one of the caller's, or a new id), the messages, the client's tools, and answers to interrupts. */
export const runAgentInputSchema = {
  type: 'object',
  properties: {
    threadId: id,
    runId: { type: 'string' },
    protocolVersion: { type: 'string' },
    parentRunId: { type: 'string' },
    state: {},
    messages: { type: 'array', items: message },
    tools: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, description: { type: 'string' }, parameters: opaque, metadata },
        required: ['name', 'description'],
      },
    },
    context: {
      type: 'array',
      default: [],
      items: { type: 'object', properties: { description: { type: 'string' }, value: { type: 'string' } }, required: ['description', 'value'] },
    },
    forwardedProps: {},
    resume: {
      type: 'array',
      items: {
        type: 'object',
        properties: { interruptId: { type: 'string' }, status: { enum: ['resolved', 'cancelled'] }, payload: opaque, metadata },
        required: ['interruptId', 'status'],
      },
    },
  },
  required: ['threadId', 'runId', 'messages'],
} as const;
export type AguiRunInput = FromSchema<typeof runAgentInputSchema>;

/** `agui.connect`: follow a thread from after a position (a join without `after_seq` gets a prelude first). */
export const aguiConnectSchema = {
  type: 'object',
  properties: { thread_id: id, after_seq: seq, after_part: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
  required: ['thread_id'],
  dependencies: { after_part: ['after_seq'] },
  additionalProperties: false,
} as const;
export type AguiConnectPayload = FromSchema<typeof aguiConnectSchema>;

/** The client frames of `agui.v1`, by type. */
export const aguiClientSchemas = { 'agui.run': runAgentInputSchema, 'agui.connect': aguiConnectSchema } as const;
export type AguiClientFrame =
  | { type: 'agui.run'; id?: string; payload: AguiRunInput }
  | { type: 'agui.connect'; id?: string; payload: AguiConnectPayload };
