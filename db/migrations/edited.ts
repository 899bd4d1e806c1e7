/**
 * A frozen function text with each `[from, to]` made where `from` occurs: exactly once, or exactly
 * `times` times when given. A `from` found any other number of times stops the migration from
 * loading: an edit never lands somewhere else, or silently nowhere. `migration` names the
 * migration in that error.
 */
export function edited(migration: string, text: string, edits: Array<[from: string, to: string, times?: number]>): string {
  return edits.reduce((out, [from, to, times = 1]) => {
    const found = out.split(from).length - 1;
    if (found !== times) throw new Error(`migration ${migration}: the text to edit is there ${found} times, not ${times}: ${from}`);
    return out.replaceAll(from, to);
  }, text);
}
