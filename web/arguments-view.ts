/**
 * A tool call's arguments for a person to read before approving it: an object as one line per
 * field (name, value), anything else as one block; a long value folded behind a disclosure that
 * shows its start. Always text, never HTML: the arguments are the model's, and so untrusted.
 */
import { el } from './dom.js';

/** A value longer than this (or of more lines) is folded. */
const LONG = 160;
const LINES = 4;
const PREVIEW = 60;

export function argumentsView(value: unknown): HTMLElement {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return valueView(pretty(value));
  const fields = Object.entries(value);
  if (fields.length === 0) return el('p', 'note', 'No arguments');
  const list = el('dl', 'args');
  for (const [name, field] of fields) {
    const shown = el('dd');
    shown.append(valueView(pretty(field)));
    list.append(el('dt', '', name), shown);
  }
  return list;
}

/** A value as text: a string as it is, anything else as indented JSON. */
export function pretty(value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

function valueView(text: string): HTMLElement {
  if (text.length <= LONG && text.split('\n').length <= LINES) return el('pre', '', text);
  const fold = el('details');
  const start = text.slice(0, PREVIEW).replace(/\s+/g, ' ');
  fold.append(el('summary', '', `${start}… (${text.length} characters)`), el('pre', '', text));
  return fold;
}
