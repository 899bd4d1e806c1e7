/**
 * The simulator's directives: what a test or a demo writes into its user message to steer the
 * reply, and the words that make it call a tool. Pure.
 *
 * Directives (anywhere in the most recent `user` message; they are stripped from the echo)
 *   [[words:N]]          reply length in words for this request (1..10000)
 *   [[delay:MS]]         delay between streamed chunks (overrides tokenDelayMs)
 *   [[firstdelay:MS]]    delay before the first chunk (overrides firstTokenDelayMs)
 *   [[tool:NAME ARGS]]   force a call to tool NAME (if offered) with ARGS (raw string,
 *                        default "{}", forwarded verbatim, not validated); repeatable
 *   [[say:TEXT]]         a reply that calls tools writes TEXT first (streamed word by word,
 *                        before the calls), as models often do
 *   [[fault:429]]        HTTP 429, headers retry-after: 1 (s) and retry-after-ms, error JSON
 *   [[fault:500]]        HTTP 500 with error JSON
 *   [[fault:cut]]        stream ~half the reply then destroy the socket (no [DONE]);
 *                        non-streaming: half of the JSON body, then destroy
 *   [[fault:midstream]]  stream ~half the reply, then an error chunk ({"error": {...}}, as
 *                        providers send when they fail mid-answer) and the end, no [DONE]
 *   [[fault:hang]]       never answer (until close() or the client aborts)
 *   [[fault:badtool]]    tool call whose arguments are malformed JSON ('{"broken": tru');
 *                        uses the triggered tool, else the first offered tool
 *   [[fault:loop]]       always call the first offered tool with {} (even after tool results)
 *   [[fault:KINDxN]]     count-limited: fault only the first N requests whose most recent
 *                        user message has this exact text, then behave normally
 *                        (per-sim-instance counter; works for every KIND above)
 *   Directives in the most recent user message also apply to follow-up requests
 *   whose last message is a tool result (e.g. loop, cut, 429).
 */

export type FaultKind = '429' | '500' | 'cut' | 'midstream' | 'hang' | 'badtool' | 'loop';

const MAX_WORDS = 10_000;
const MAX_DELAY_MS = 60_000;

/**
 * The arithmetic after "calculate": the first run of numbers, operators, parentheses and spaces
 * ("calculate 6*7 please" gives "6*7"); undefined when none with a digit follows.
 */
export function calculatorExpression(text: string): string | undefined {
  const after = /\bcalculate\b(.*)/is.exec(text)?.[1];
  if (after === undefined) return undefined;
  for (const [run] of after.matchAll(/[\d.+\-*/%^()\s]+/g)) {
    // A sentence's full stop or a dangling operator is not part of the expression.
    const expression = run.trim().replace(/[\s.+\-*/%^]+$/, '').trim();
    if (/\d/.test(expression)) return expression;
  }
  return undefined;
}

export function stripDirectives(s: string): string {
  return s.replace(/\[\[[\s\S]*?\]\]/g, ' ').replace(/\s+/g, ' ').trim();
}

export interface Directives {
  words?: number;
  delay?: number;
  firstDelay?: number;
  faults: Array<{ kind: FaultKind; limit?: number; raw: string }>;
  tools: Array<{ name: string; args: string }>;
  /** Text written before the tool calls of a tool-calling reply. */
  say?: string;
}

export function parseDirectives(text: string): Directives {
  const d: Directives = { faults: [], tools: [] };
  const re = /\[\[(\w+):([\s\S]*?)\]\]/g;
  for (const m of text.matchAll(re)) {
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    const num = Number(value);
    if (key === 'words' && Number.isInteger(num)) d.words = Math.min(MAX_WORDS, Math.max(1, num));
    else if (key === 'delay' && Number.isFinite(num)) d.delay = Math.min(MAX_DELAY_MS, Math.max(0, num));
    else if (key === 'firstdelay' && Number.isFinite(num)) d.firstDelay = Math.min(MAX_DELAY_MS, Math.max(0, num));
    else if (key === 'fault') {
      const fm = /^(429|500|cut|midstream|hang|badtool|loop)(?:x(\d+))?$/i.exec(value);
      if (fm) {
        const f: Directives['faults'][number] = { kind: fm[1]!.toLowerCase() as FaultKind, raw: value.toLowerCase() };
        if (fm[2] !== undefined) f.limit = Number(fm[2]);
        d.faults.push(f);
      }
    } else if (key === 'say') {
      d.say = value;
    } else if (key === 'tool') {
      const tm = /^([A-Za-z0-9_.-]+)(?:\s+([\s\S]*))?$/.exec(value);
      if (tm) d.tools.push({ name: tm[1]!, args: tm[2]?.trim() || '{}' });
    }
  }
  return d;
}

