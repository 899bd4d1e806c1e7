/** Text from outside (a model, a tool) made storable: lone UTF-16 surrogates become U+FFFD. */
export function wellFormed(text: string): string {
  // String.prototype.toWellFormed (Node 20) is newer than the ES2022 lib this project types against.
  return (text as string & { toWellFormed(): string }).toWellFormed();
}
