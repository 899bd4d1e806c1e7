/**
 * The bound on what a frame may cost before JSON.parse: its text is scanned once, cheaply, and a
 * frame nested too deep or holding too many values is refused unparsed. The bound on values is
 * checked against the schemas at import, so no valid frame can ever be refused by it.
 */
import { clientEnvelopeSchema, clientPayloadSchemas } from './schemas.js';

/** Frames are shallow; anything nested deeper is refused before JSON.parse spends time on it. */
export const MAX_JSON_DEPTH = 16;

/**
 * The most values (the frame itself, every key's value, every array item) a frame may hold before
 * it is refused unparsed. No valid frame holds more than MOST_FRAME_VALUES (9: a message.send with
 * every field); the room above lets a frame with a few misspelt or extra fields still get its own
 * precise error. A frame of 50 KB holding 4,000 keys costs about 1.7 ms to parse and judge
 * (JSON.parse, then findUnstorable and ajv each walking every key); refused here it costs a scan
 * of its first few hundred bytes.
 */
export const MAX_JSON_VALUES = 64;

/** Nesting depth of JSON text (brackets outside strings), stopping early once past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

const tooDeep = `The frame is nested deeper than ${MAX_JSON_DEPTH} levels.`;
const tooManyValues = () => `The frame holds more than ${MAX_JSON_VALUES} values (keys' values and array items); no valid frame holds more than ${MOST_FRAME_VALUES}.`;

/**
 * Why a frame's text is refused before JSON.parse sees it (deeper than MAX_JSON_DEPTH, more than
 * MAX_JSON_VALUES values), or null. One pass that stops at the first bracket or value past a
 * limit, and jumps over strings with indexOf; text that is not JSON is left for JSON.parse to
 * refuse.
 */
export function preParseRefusal(text: string): string | null {
  let depth = 0;
  let values = 0;
  /** Bit d set: the container at depth d is an array (its items are values, an object's strings after `{` and `,` are keys). */
  let arrays = 0;
  /** The next thing that is not whitespace or a closing bracket starts a value (not a key). */
  let expectValue = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    if (c === 34) {
      if (expectValue && ++values > MAX_JSON_VALUES) return tooManyValues();
      expectValue = false;
      i = closingQuote(text, i);
      if (i < 0) return null;
    } else if (c === 123 || c === 91) {
      if (expectValue && ++values > MAX_JSON_VALUES) return tooManyValues();
      if (++depth > MAX_JSON_DEPTH) return tooDeep;
      if (c === 91) arrays |= 1 << depth;
      expectValue = c === 91;
    } else if (c === 125 || c === 93) {
      arrays &= ~(1 << depth);
      depth--;
      expectValue = false;
    } else if (c === 58) {
      expectValue = true;
    } else if (c === 44) {
      expectValue = (arrays & (1 << depth)) !== 0;
    } else if (expectValue) {
      // The first character of a number, true, false or null.
      if (++values > MAX_JSON_VALUES) return tooManyValues();
      expectValue = false;
    }
  }
  return null;
}

/** The index of the quote that closes the string opening at `open` (one not escaped by an odd run of backslashes), or -1. */
function closingQuote(text: string, open: number): number {
  for (let at = open + 1; ; at++) {
    at = text.indexOf('"', at);
    if (at < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** The most values a document valid under `schema` can hold (Infinity: no bound). */
function mostValues(schema: Record<string, any>): number {
  const choices = schema.anyOf ?? schema.oneOf;
  if (choices) return Math.max(...(choices as Array<Record<string, any>>).map(mostValues));
  if (schema.type === 'object') {
    if (schema.additionalProperties !== false) return Infinity;
    return 1 + Object.values(schema.properties ?? {}).reduce<number>((n, child) => n + mostValues(child as Record<string, any>), 0);
  }
  if (schema.type === 'array') return schema.maxItems === undefined ? Infinity : 1 + schema.maxItems * mostValues(schema.items ?? {});
  return 1;
}

/** The most values a valid client frame holds: itself, its envelope's fields (`type`, `id`) and its largest payload. */
const envelopeFields = Object.keys(clientEnvelopeSchema.properties).filter((key) => key !== 'payload').length;
export const MOST_FRAME_VALUES = Math.max(...Object.values(clientPayloadSchemas).map((payload) => 1 + envelopeFields + mostValues(payload)));
// A schema that outgrows the bound (or loses its own) must raise MAX_JSON_VALUES, not be refused by it.
if (!(MOST_FRAME_VALUES <= MAX_JSON_VALUES)) {
  throw new Error(`a valid frame may hold ${MOST_FRAME_VALUES} values, more than MAX_JSON_VALUES (${MAX_JSON_VALUES})`);
}
