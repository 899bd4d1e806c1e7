/**
 * The WebSocket protocol's JSON Schemas as published documents, each with a `$id`: every client
 * frame (`client.<type>`), every server frame and thread event (`server.<type>`), the result an
 * `ack` carries per request (`ack.<type>`), and the error, run error and close codes. Built from
 * the very schemas the gateway validates with (./schemas.ts, ./resources.ts, ./codes.ts); served
 * at `GET /v1/schemas/<name>.json` and gathered in the AsyncAPI document (./asyncapi.ts).
 * Each document is self-contained: no `$ref` to resolve.
 */
import { CloseCodes, ErrorCodes, PROTOCOL, RunErrorCodes } from './codes.js';
import { ackResultSchemas, clientEnvelopeSchema, clientPayloadSchemas, eventPayloadSchemas, serverPayloadSchemas } from './schemas.js';
import { AGUI_SUBPROTOCOL, aguiClientSchemas } from './agui.js';

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

/** The `$id` of the published schema `name`. */
export function schemaId(name: string): string {
  return `urn:convo-gateway:${PROTOCOL}:${name}`;
}

/** What a client should do on each close code (the comments of ./codes.ts, for readers of the schema). */
const CLOSE_ADVICE: Record<keyof typeof CloseCodes, string> = {
  going_away: 'The server is shutting down or restarting. Reconnect (to another gateway) and resume by seq.',
  too_large: 'A frame was over the size limit (the reason names it). Do not resend it; reconnecting is fine.',
  internal_error: 'Unexpected server failure. Reconnect with backoff.',
  slow_consumer: 'The client read too slowly (or the server is overloaded). Reconnect and resume by seq.',
  unauthenticated: 'No valid token, or it expired; the reason is the error code. token_expired: refresh and reconnect; unauthenticated: get a new token.',
  forbidden: 'The token is valid but not allowed this (a refresh for another user, a refused origin). Do not reconnect as is.',
  policy: 'Rate limit or too many bad frames. Back off (the reason may carry retry_after_ms) before reconnecting.',
  unavailable: 'A dependency the handshake needs is unreachable. Reconnect with backoff; keep the token.',
};

/** `agui-client`/`agui-server`: frames of a socket opened with the `agui.v1` subprotocol. */
export type SchemaKind = 'client' | 'server' | 'ack' | 'codes' | 'agui-client' | 'agui-server';

export interface PublishedSchema {
  name: string;
  kind: SchemaKind;
  /** The frame type it describes (client, server and ack schemas). */
  frameType?: string;
  schema: Record<string, unknown>;
}

function document(name: string, title: string, body: Record<string, unknown>): Record<string, unknown> {
  return { $schema: DRAFT_07, $id: schemaId(name), title, ...body };
}

function frame(type: string, payload: object, payloadRequired: boolean, id: object, description: string): Record<string, unknown> {
  return {
    description,
    type: 'object',
    properties: { type: { const: type }, id, payload },
    required: payloadRequired ? ['type', 'payload'] : ['type'],
    additionalProperties: false,
  };
}

function build(): PublishedSchema[] {
  const out: PublishedSchema[] = [];
  const add = (kind: SchemaKind, name: string, title: string, body: Record<string, unknown>, frameType?: string) =>
    out.push({ name, kind, ...(frameType ? { frameType } : {}), schema: document(name, title, body) });

  for (const [type, payload] of Object.entries(clientPayloadSchemas)) {
    add('client', `client.${type}`, `${type} (client → server)`,
      frame(type, payload, false, clientEnvelopeSchema.properties.id, `A client frame; the server answers an \`ack\` or an \`error\` carrying the frame's id.`), type);
  }
  const events = new Set(Object.keys(eventPayloadSchemas));
  for (const [type, payload] of Object.entries(serverPayloadSchemas)) {
    const what = events.has(type) ? 'A thread event (stored with its per-thread seq, replayed by thread.subscribe after_seq).' : 'A server frame.';
    add('server', `server.${type}`, `${type} (server → client)`, frame(type, payload, true, { type: 'string' }, what), type);
  }
  for (const [type, result] of Object.entries(ackResultSchemas)) {
    add('ack', `ack.${type}`, `ack of ${type}`, frame('ack', result, true, { type: 'string' }, `The \`ack\` answering a \`${type}\` frame (its \`id\` is the request's).`), type);
  }
  for (const [type, payload] of Object.entries(aguiClientSchemas)) {
    add('agui-client', `agui.client.${type}`, `${type} (client → server, ${AGUI_SUBPROTOCOL})`,
      frame(type, payload, true, clientEnvelopeSchema.properties.id, `A client frame of an \`${AGUI_SUBPROTOCOL}\` socket; refused with an \`error\` frame carrying its id.`), type);
  }
  add('agui-server', 'agui.server.event', `An AG-UI event (server → client, ${AGUI_SUBPROTOCOL})`, {
    description:
      `On an \`${AGUI_SUBPROTOCOL}\` socket every server frame but \`error\` is one AG-UI 1.0 event (https://docs.ag-ui.com), as @ag-ui/core's EventSchema ` +
      'defines it; `metadata.seq` is the stored thread event it comes from and `metadata.part` its place among the AG-UI events that one stored event becomes.',
    type: 'object',
    properties: {
      type: { type: 'string', pattern: '^[A-Z_]+$' },
      metadata: { type: 'object', properties: { seq: { type: 'integer', minimum: 0 }, part: { type: 'integer', minimum: 0 }, prelude: { type: 'boolean' } } },
    },
    required: ['type'],
  });
  add('codes', 'error-codes', 'Error codes', {
    description: 'The `code` of an `error` frame or REST error body. `retryable` codes may succeed later unchanged (after `retry_after_ms`).',
    type: 'string',
    anyOf: Object.entries(ErrorCodes).map(([code, about]) => ({
      const: code,
      description: `${about.message} HTTP ${about.status}; ${about.retryable ? 'retryable' : 'not retryable: change the request first'}.`,
    })),
  });
  add('codes', 'run-error-codes', 'Run error codes', {
    description: 'The `error.code` of an `agent_completed` event whose status is `failed`.',
    type: 'string',
    anyOf: Object.entries(RunErrorCodes).map(([code, message]) => ({ const: code, description: message })),
  });
  add('codes', 'close-codes', 'WebSocket close codes', {
    description: '4xxx are the server\'s own; 1xxx are RFC 6455\'s. 4001 and 4003 mean: do not reconnect with the same credentials.',
    type: 'integer',
    anyOf: Object.entries(CloseCodes).map(([name, code]) => ({ const: code, title: name, description: CLOSE_ADVICE[name as keyof typeof CloseCodes] })),
  });
  return out;
}

let published: PublishedSchema[] | undefined;

/** Every published schema, built once (never mutated). */
export function publishedSchemas(): readonly PublishedSchema[] {
  published ??= build();
  return published;
}

export function publishedSchemaNames(): string[] {
  return publishedSchemas().map((entry) => entry.name);
}

/** The schema `name`, or undefined. */
export function publishedSchema(name: string): Record<string, unknown> | undefined {
  return publishedSchemas().find((entry) => entry.name === name)?.schema;
}
