/**
 * Reply "script" for the LLM simulator (see llm-sim.ts for the directive list).
 *
 * Pure and deterministic: given a Chat Completions request body (plus the
 * simulator's per-content fault counters), decide what the simulated model
 * answers. No I/O here; llm-sim-reply.ts turns a ReplyPlan into HTTP/SSE.
 */
import { calculatorExpression, parseDirectives, stripDirectives, type FaultKind } from './llm-sim-directives.js';
import { approxTokens, contentText, offeredToolNames, promptTokens, sha, usageOf, type Usage } from './llm-sim-request.js';

export interface SimToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ReplyTiming {
  firstTokenDelayMs: number;
  tokenDelayMs: number;
}

export type ReplyPlan =
  | { kind: 'error'; status: 429 | 500; message: string }
  | { kind: 'hang' }
  | {
      kind: 'text';
      text: string;
      /** Word-sized pieces; pieces.join('') === text. */
      pieces: string[];
      cut: boolean;
      /** [[fault:midstream]]: half the stream, then an error chunk. */
      failMidStream: boolean;
      timing: ReplyTiming;
      usage: Usage;
    }
  | {
      kind: 'tool_calls';
      calls: SimToolCall[];
      /** Text written before the calls ([[say:...]]), in word-sized pieces; none: content null. */
      pieces: string[];
      cut: boolean;
      /** [[fault:midstream]]: half the stream, then an error chunk. */
      failMidStream: boolean;
      timing: ReplyTiming;
      usage: Usage;
    };

export interface ScriptDefaults {
  firstTokenDelayMs: number;
  tokenDelayMs: number;
  replyWords: number;
}

const FILLER = [
  'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel',
  'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa',
  'quebec', 'romeo', 'sierra', 'tango', 'uniform', 'victor', 'whiskey', 'xray',
  'yankee', 'zulu', 'amber', 'basil', 'cedar', 'dune', 'ember', 'fern',
  'granite', 'harbor', 'iris', 'jasper', 'kelp', 'lantern', 'meadow', 'nectar',
  'opal', 'pebble', 'quartz', 'river', 'saffron', 'thistle', 'umber', 'violet',
];

export const BAD_TOOL_ARGUMENTS = '{"broken": tru';

/** mulberry32: a small deterministic PRNG; the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PRNG seeded by the first 32 bits of a hex digest. */
function rng(seedHex: string): () => number {
  return mulberry32(parseInt(seedHex.slice(0, 8), 16));
}

function splitWords(text: string): string[] {
  const words = text.split(' ');
  return words.map((w, i) => (i === 0 ? w : ' ' + w));
}

/**
 * Decide the reply. `faultCounters` is mutated for count-limited faults
 * (key: fault directive + last user message text).
 */
export function planReply(body: any, defaults: ScriptDefaults, faultCounters: Map<string, number>): ReplyPlan {
  const messages: any[] = body.messages;
  const last = messages[messages.length - 1];
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const userText = lastUser ? contentText(lastUser.content) : '';
  const d = parseDirectives(userText);
  const seed = sha(JSON.stringify(messages));

  // Active faults (count-limited ones only for the first N requests with this content).
  const active = new Set<FaultKind>();
  for (const f of d.faults) {
    if (f.limit === undefined) {
      active.add(f.kind);
      continue;
    }
    const key = `${f.raw}\u0000${userText}`;
    const seen = faultCounters.get(key) ?? 0;
    if (seen < f.limit) {
      faultCounters.set(key, seen + 1);
      active.add(f.kind);
    }
  }
  if (active.has('hang')) return { kind: 'hang' };
  if (active.has('429')) {
    return { kind: 'error', status: 429, message: 'Rate limit reached for sim-1 (simulated by [[fault:429]]). Please try again in 1s.' };
  }
  if (active.has('500')) {
    return { kind: 'error', status: 500, message: 'The server had an error while processing your request (simulated by [[fault:500]]).' };
  }

  const timing: ReplyTiming = {
    firstTokenDelayMs: d.firstDelay ?? defaults.firstTokenDelayMs,
    tokenDelayMs: d.delay ?? defaults.tokenDelayMs,
  };
  const cut = active.has('cut');
  const failMidStream = active.has('midstream');
  const prompt = promptTokens(body);
  const offered = offeredToolNames(body);
  const toolChoice = body.tool_choice;
  const toolsAllowed = offered.length > 0 && toolChoice !== 'none';

  const toolPlan = (calls: Array<{ name: string; args: string }>): ReplyPlan => {
    const limited = body.parallel_tool_calls === false ? calls.slice(0, 1) : calls;
    const simCalls = limited.map((c, i) => ({
      id: 'call_' + sha(`${seed}|${i}|${c.name}`).slice(0, 24),
      name: c.name,
      arguments: c.args,
    }));
    const said = d.say ?? '';
    const completion = simCalls.reduce((n, c) => n + approxTokens(c.name + c.arguments), approxTokens(said));
    return { kind: 'tool_calls', calls: simCalls, pieces: said ? splitWords(said) : [], cut, failMidStream, timing, usage: usageOf(prompt, completion) };
  };

  if (toolsAllowed && active.has('loop')) {
    return toolPlan([{ name: offered[0]!, args: '{}' }]);
  }

  if (toolsAllowed && last?.role === 'user') {
    let calls: Array<{ name: string; args: string }> = d.tools.filter((t) => offered.includes(t.name));
    if (calls.length === 0) {
      const plain = stripDirectives(userText);
      const expression = calculatorExpression(plain);
      if (expression !== undefined && offered.includes('calculator')) {
        calls.push({ name: 'calculator', args: JSON.stringify({ expression }) });
      }
      if (/\btime\b/i.test(plain) && offered.includes('get_current_time')) {
        calls.push({ name: 'get_current_time', args: '{}' });
      }
    }
    const forced = typeof toolChoice === 'object' && toolChoice ? toolChoice.function?.name : undefined;
    if (typeof forced === 'string' && offered.includes(forced)) {
      const match = calls.find((c) => c.name === forced);
      calls = [match ?? { name: forced, args: '{}' }];
    } else if (calls.length === 0 && (toolChoice === 'required' || active.has('badtool'))) {
      calls = [{ name: offered[0]!, args: '{}' }];
    }
    if (calls.length > 0) {
      if (active.has('badtool')) calls = calls.map((c) => ({ name: c.name, args: BAD_TOOL_ARGUMENTS }));
      return toolPlan(calls);
    }
  }

  let text: string;
  if (last?.role === 'tool') {
    text = toolResultsText(messages);
  } else {
    const wordsWanted = d.words ?? defaults.replyWords;
    const said = stripDirectives(userText).split(' ').filter(Boolean).slice(0, 5);
    const words = ['You', 'said:', ...said];
    const rand = rng(seed);
    while (words.length < wordsWanted) words.push(FILLER[Math.floor(rand() * FILLER.length)]!);
    words.length = Math.max(1, Math.min(words.length, wordsWanted));
    text = words.join(' ') + '.';
  }
  const pieces = splitWords(text);
  return { kind: 'text', text, pieces, cut, failMidStream, timing, usage: usageOf(prompt, approxTokens(text)) };
}

/** "The <name> tool says <result>." for each trailing tool message, in order. */
function toolResultsText(messages: any[]): string {
  let start = messages.length;
  while (start > 0 && messages[start - 1]?.role === 'tool') start--;
  const assistant = messages[start - 1];
  const names = new Map<string, string>();
  if (assistant?.role === 'assistant' && Array.isArray(assistant.tool_calls)) {
    for (const c of assistant.tool_calls) {
      if (typeof c?.id === 'string' && typeof c?.function?.name === 'string') names.set(c.id, c.function.name);
    }
  }
  const parts: string[] = [];
  for (const m of messages.slice(start)) {
    const name = names.get(m.tool_call_id);
    const result = contentText(m.content);
    parts.push(`The ${name ?? 'unknown'} tool says ${result}.`);
  }
  return parts.join(' ');
}
