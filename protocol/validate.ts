/**
 * Compiled validators, one shared ajv instance, compiled once at import. `parseClientFrame` is
 * the only way a client frame reaches a handler.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  ackResultSchemas,
  clientEnvelopeSchema,
  clientPayloadSchemas,
  serverEnvelopeSchema,
  serverPayloadSchemas,
} from './schemas.js';
import { requestSchemas } from './resources.js';
import type { ClientFrame, ClientFrameType } from './frames.js';
import type { ErrorCode } from './codes.js';
import { preParseRefusal } from './pre-parse.js';

export { jsonDepth, MAX_JSON_DEPTH, MAX_JSON_VALUES, MOST_FRAME_VALUES, preParseRefusal } from './pre-parse.js';

// ajv and ajv-formats are CommonJS with a `default` export; under NodeNext the class is on .default.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

export const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: true, allowUnionTypes: true });
addFormats(ajv, ['date-time']);

const envelope = ajv.compile<{ type: string; id?: string; payload: Record<string, unknown> }>(clientEnvelopeSchema);
const clientPayload = Object.fromEntries(
  Object.entries(clientPayloadSchemas).map(([type, schema]) => [type, ajv.compile(schema)]),
) as Record<ClientFrameType, ValidateFunction>;

const serverEnvelope = ajv.compile(serverEnvelopeSchema);
const serverPayload = Object.fromEntries(
  Object.entries(serverPayloadSchemas).map(([type, schema]) => [type, ajv.compile(schema)]),
) as Record<string, ValidateFunction>;
const ackResult = Object.fromEntries(
  Object.entries(ackResultSchemas).map(([type, schema]) => [type, ajv.compile(schema)]),
) as Record<string, ValidateFunction>;

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; id?: string; code: ErrorCode; message: string };

/** Turns ajv's first error into one sentence a person can act on: `payload.content must be a string`. */
export function describeError(error: ErrorObject | undefined, root: string): string {
  if (!error) return `${root} is not valid`;
  const path = root + error.instancePath.replace(/\//g, '.');
  switch (error.keyword) {
    case 'required':
      return `${path}.${(error.params as { missingProperty: string }).missingProperty} is required`;
    case 'additionalProperty':
    case 'additionalProperties':
      return `${path} has an unknown field '${(error.params as { additionalProperty: string }).additionalProperty}'`;
    case 'enum':
      return `${path} must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'maxLength':
      return `${path} is longer than the ${(error.params as { limit: number }).limit} characters allowed`;
    case 'type': {
      const t = (error.params as { type: string }).type;
      return `${path} must be ${/^[aeiou]/.test(t) ? 'an' : 'a'} ${t}`;
    }
    default:
      return `${path} ${error.message ?? 'is not valid'}`;
  }
}

/**
 * The code for a schema failure: message text over its length limit (32,000 characters of
 * `content`) is `too_large`, so a client knows to shorten it rather than fix the frame's shape.
 */
export function codeFor(error: ErrorObject | undefined, otherwise: ErrorCode): ErrorCode {
  return error?.keyword === 'maxLength' && error.instancePath.endsWith('/content') ? 'too_large' : otherwise;
}

/**
 * Text Postgres cannot store: a NUL character (text and jsonb refuse it) or a lone UTF-16
 * surrogate (`"\ud800"` in JSON; jsonb refuses the escape, and it is not valid Unicode anyway).
 */
function unstorable(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters';
  // String.prototype.isWellFormed (Node 20) is newer than the ES2022 lib this project types against.
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed()) return 'must be valid Unicode (it holds a lone surrogate such as \\ud800)';
  return null;
}

/**
 * The first string (value or key) holding text the store cannot keep, with the reason, as
 * `payload.content must ...`; or null. Refused at the door, with the field named, instead of
 * failing later in the store.
 */
export function findUnstorable(value: unknown, path: string): string | null {
  if (typeof value === 'string') {
    const why = unstorable(value);
    return why ? `${path} ${why}` : null;
  }
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, child] of Object.entries(value)) {
    const childPath = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    const keyWhy = unstorable(key);
    if (keyWhy) return `${path} has a key that ${keyWhy}`;
    const found = findUnstorable(child, childPath);
    if (found) return found;
  }
  return null;
}

/** Parses and validates one text frame. Never throws. */
export function parseClientFrame(text: string): ParseResult {
  const refusal = preParseRefusal(text);
  if (refusal) return { ok: false, code: 'invalid_frame', message: refusal };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_frame', message: 'The frame is not valid JSON.' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_frame', message: 'The frame must be a JSON object {"type", "id"?, "payload"}.' };
  }
  const candidateId = (value as { id?: unknown }).id;
  const id = typeof candidateId === 'string' && candidateId.length <= 128 ? candidateId : undefined;
  if (!envelope(value)) {
    return { ok: false, id, code: 'invalid_frame', message: describeError(envelope.errors?.[0], 'frame') };
  }
  const frame = value as { type: string; payload: unknown };
  const unfit = findUnstorable(frame.payload, 'payload');
  if (unfit) return { ok: false, id, code: 'invalid_frame', message: unfit };
  const validatePayload = Object.hasOwn(clientPayload, frame.type) ? clientPayload[frame.type as ClientFrameType] : undefined;
  if (!validatePayload) {
    return {
      ok: false,
      id,
      code: 'unknown_type',
      message: `Unknown frame type '${frame.type.slice(0, 64)}'. Known types: ${Object.keys(clientPayload).join(', ')}.`,
    };
  }
  if (!validatePayload(frame.payload)) {
    const error = validatePayload.errors?.[0];
    return { ok: false, id, code: codeFor(error, 'invalid_frame'), message: describeError(error, 'payload') };
  }
  return { ok: true, frame: value as ClientFrame };
}

/**
 * Validates a frame the server sent (used by the tests on every frame received). Returns null when
 * valid, else a description. `requestType` also checks an ack's result shape.
 */
export function checkServerFrame(frame: unknown, requestType?: string): string | null {
  if (!serverEnvelope(frame)) return describeError(serverEnvelope.errors?.[0], 'frame');
  const { type, payload } = frame as { type: string; payload: unknown };
  const validate = serverPayload[type];
  if (!validate) return `no schema for ${type}`;
  if (!validate(payload)) return `${type}: ${describeError(validate.errors?.[0], 'payload')}`;
  if (type === 'ack' && requestType && ackResult[requestType] && !ackResult[requestType]!(payload)) {
    return `ack of ${requestType}: ${describeError(ackResult[requestType]!.errors?.[0], 'payload')}`;
  }
  return null;
}

/** Validators of REST bodies (the same schemas as the matching frames' payloads). */
export const requestValidators = Object.fromEntries(
  Object.entries(requestSchemas).map(([name, schema]) => [name, ajv.compile(schema)]),
) as Record<keyof typeof requestSchemas, ValidateFunction>;
