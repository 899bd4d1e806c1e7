/**
 * Text from outside (a model, a tool) made storable: lone UTF-16 surrogates and NUL characters
 * (which Postgres text and jsonb refuse) become U+FFFD.
 */
export function wellFormed(text: string): string {
  // String.prototype.toWellFormed (Node 20) is newer than the ES2022 lib this project types against.
  const formed = (text as string & { toWellFormed(): string }).toWellFormed();
  return formed.includes('\u0000') ? formed.replaceAll('\u0000', '\ufffd') : formed;
}
