/**
 * The id of a frame that is refused before it is parsed (past the frames-per-second limit), read
 * from its first bytes so the refusal can still name it: a frame refused for arriving too fast
 * must cost less than one that is let in, whatever it holds.
 */

/**
 * How far into a frame its id is looked for. Clients write `{"type":…,"id":…,"payload":…}` (the
 * SDK does), so the id comes within `{"type":"<64>","id":"<128>"` plus a little room.
 */
export const ID_PEEK_BYTES = 256;

const QUOTE = 34;
const BACKSLASH = 92;

/**
 * The frame's top-level `"id"` if it is a plain string (printable ASCII, no escapes, 1 to 128
 * characters) within the first ID_PEEK_BYTES bytes; otherwise undefined (the refusal then carries
 * no id). Never reads further, never throws.
 */
export function peekFrameId(message: ArrayBuffer): string | undefined {
  const bytes = new Uint8Array(message, 0, Math.min(message.byteLength, ID_PEEK_BYTES));
  let depth = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
    else if (c === QUOTE) {
      const end = stringEnd(bytes, i);
      if (end < 0) return undefined;
      // A key `"id"` of the outermost object: the next byte that is not blank is a colon.
      if (depth === 1 && end === i + 3 && bytes[i + 1] === 105 && bytes[i + 2] === 100) {
        const at = skipBlanks(bytes, end + 1);
        if (bytes[at] === 58) return plainString(bytes, skipBlanks(bytes, at + 1));
      }
      i = end;
    }
  }
  return undefined;
}

/** The index of the quote closing the string that opens at `open`, or -1 past the end. */
function stringEnd(bytes: Uint8Array, open: number): number {
  for (let i = open + 1; i < bytes.length; i++) {
    if (bytes[i] === BACKSLASH) i++;
    else if (bytes[i] === QUOTE) return i;
  }
  return -1;
}

function skipBlanks(bytes: Uint8Array, from: number): number {
  let i = from;
  while (bytes[i] === 32 || bytes[i] === 10 || bytes[i] === 13 || bytes[i] === 9) i++;
  return i;
}

/** The string value at `open` if it is 1 to 128 printable ASCII characters without escapes. */
function plainString(bytes: Uint8Array, open: number): string | undefined {
  if (bytes[open] !== QUOTE) return undefined;
  let id = '';
  for (let i = open + 1; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) return id.length > 0 ? id : undefined;
    if (c === BACKSLASH || c < 32 || c > 126 || id.length === 128) return undefined;
    id += String.fromCharCode(c);
  }
  return undefined;
}
