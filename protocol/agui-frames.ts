/**
 * Parsing the client frames of an `agui.v1` socket (`agui.run`, `agui.connect`), the counterpart of
 * parseClientFrame for the native frames: the same envelope `{type, id?, payload}`, the same error
 * codes, the payload checked by its schema (./agui.ts). A RunAgentInput is open (unknown fields
 * pass, as AG-UI allows), so its frames get a deeper nesting bound than native ones and no bound on
 * values beyond the frame size (MAX_FRAME_BYTES, checked before this).
 */
import type { ValidateFunction } from 'ajv';
import { aguiClientSchemas, type AguiClientFrame } from './agui.js';
import type { ErrorCode } from './codes.js';
import { LIMITS } from './limits.js';
import { jsonDepth } from './pre-parse.js';
import { ajv, codeFor, describeError, findUnstorable } from './validate.js';

/** How deep an agui frame may nest (a tool's parameter schema sits five levels down). */
export const AGUI_MAX_DEPTH = 32;

const envelope = ajv.compile({
  type: 'object',
  properties: {
    type: { type: 'string', minLength: 1, maxLength: 64 },
    id: { type: 'string', minLength: 1, maxLength: LIMITS.idLength },
    payload: { type: 'object' },
  },
  required: ['type', 'payload'],
  additionalProperties: false,
});
const payloads = Object.fromEntries(Object.entries(aguiClientSchemas).map(([type, schema]) => [type, ajv.compile(schema)])) as Record<
  AguiClientFrame['type'],
  ValidateFunction
>;

export type AguiParseResult = { ok: true; frame: AguiClientFrame } | { ok: false; id?: string; code: ErrorCode; message: string };

/** Parses and validates one text frame of an agui socket. Never throws. */
export function parseAguiFrame(text: string): AguiParseResult {
  if (jsonDepth(text, AGUI_MAX_DEPTH) > AGUI_MAX_DEPTH) return { ok: false, code: 'invalid_frame', message: `The frame is nested deeper than ${AGUI_MAX_DEPTH} levels.` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_frame', message: 'The frame is not valid JSON.' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_frame', message: 'The frame must be a JSON object {"type", "id"?, "payload"}.' };
  }
  const candidate = (value as { id?: unknown }).id;
  const id = typeof candidate === 'string' && candidate.length <= LIMITS.idLength ? candidate : undefined;
  if (!envelope(value)) return { ok: false, id, code: 'invalid_frame', message: describeError(envelope.errors?.[0], 'frame') };
  const frame = value as { type: string; payload: unknown };
  const validate = Object.hasOwn(payloads, frame.type) ? payloads[frame.type as AguiClientFrame['type']] : undefined;
  if (!validate) {
    return { ok: false, id, code: 'unknown_type', message: `Unknown frame type '${frame.type.slice(0, 64)}' on an agui.v1 socket. Known types: ${Object.keys(payloads).join(', ')}.` };
  }
  const unfit = findUnstorable(frame.payload, 'payload');
  if (unfit) return { ok: false, id, code: 'invalid_frame', message: unfit };
  if (!validate(frame.payload)) {
    const error = validate.errors?.[0];
    return { ok: false, id, code: codeFor(error, 'invalid_frame'), message: describeError(error, 'payload') };
  }
  return { ok: true, frame: value as AguiClientFrame };
}
