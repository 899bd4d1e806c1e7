/**
 * Reply "script" for the LLM simulator (see llm-sim.ts for the directive list).
 *
 * Pure and deterministic: given a Chat Completions request body (plus the
 * simulator's per-content fault counters), decide what the simulated model
 * answers. No I/O here; llm-sim.ts turns a ReplyPlan into HTTP/SSE.
 */
import { createHash } from 'node:crypto';

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
      timing: ReplyTiming;
      usage: Usage;
    }
  | { kind: 'tool_calls'; calls: SimToolCall[]; cut: boolean; timing: ReplyTiming; usage: Usage };

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ScriptDefaults {
  firstTokenDelayMs: number;
  tokenDelayMs: number;
  replyWords: number;
}

export type FaultKind = '429' | '500' | 'cut' | 'hang' | 'badtool' | 'loop';

const FILLER = [
  'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel',
  'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa',
  'quebec', 'romeo', 'sierra', 'tango', 'uniform', 'victor', 'whiskey', 'xray',
  'yankee', 'zulu', 'amber', 'basil', 'cedar', 'dune', 'ember', 'fern',
  'granite', 'harbor', 'iris', 'jasper', 'kelp', 'lantern', 'meadow', 'nectar',
  'opal', 'pebble', 'quartz', 'river', 'saffron', 'thistle', 'umber', 'violet',
];

const MAX_WORDS = 10_000;
const MAX_DELAY_MS = 60_000;
export const BAD_TOOL_ARGUMENTS = '{"broken": tru';

export function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** ~4 characters per token, at least 1 for any non-empty string. */
export function approxTokens(s: string): number {
  return s.length === 0 ? 0 : Math.max(1, Math.ceil(s.length / 4));
}

/** Text of a message `content`: a string, or an array of parts whose `text` fields are concatenated. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as any).text === 'string' ? (p as any).text : ''))
      .join('');
  }
  return '';
}

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

interface Directives {
  words?: number;
  delay?: number;
  firstDelay?: number;
  faults: Array<{ kind: FaultKind; limit?: number; raw: string }>;
  tools: Array<{ name: string; args: string }>;
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
      const fm = /^(429|500|cut|hang|badtool|loop)(?:x(\d+))?$/i.exec(value);
      if (fm) {
        const f: Directives['faults'][number] = { kind: fm[1]!.toLowerCase() as FaultKind, raw: value.toLowerCase() };
        if (fm[2] !== undefined) f.limit = Number(fm[2]);
        d.faults.push(f);
      }
    } else if (key === 'tool') {
      const tm = /^([A-Za-z0-9_.-]+)(?:\s+([\s\S]*))?$/.exec(value);
      if (tm) d.tools.push({ name: tm[1]!, args: tm[2]?.trim() || '{}' });
    }
  }
  return d;
}

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

function offeredToolNames(body: any): string[] {
  if (!Array.isArray(body?.tools)) return [];
  const names: string[] = [];
  for (const t of body.tools) {
    const n = t?.function?.name;
    if (typeof n === 'string') names.push(n);
  }
  return names;
}

function promptTokens(body: any): number {
  let n = 0;
  for (const m of body.messages as any[]) {
    n += 3 + approxTokens(contentText(m?.content));
    if (Array.isArray(m?.tool_calls)) {
      for (const c of m.tool_calls) n += approxTokens(String(c?.function?.name ?? '') + String(c?.function?.arguments ?? ''));
    }
  }
  if (Array.isArray(body.tools)) n += approxTokens(JSON.stringify(body.tools));
  return n;
}

function usageOf(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Validates the minimal shape; returns an error message or null. */
export function validateBody(body: any): string | null {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'Request body must be a JSON object.';
  if (!Array.isArray(body.messages)) return "Missing required parameter: 'messages'.";
  if (body.messages.some((m: any) => !m || typeof m !== 'object' || typeof m.role !== 'string')) {
    return "Invalid 'messages': every message must be an object with a string 'role'.";
  }
  return null;
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
    const completion = simCalls.reduce((n, c) => n + approxTokens(c.name + c.arguments), 0);
    return { kind: 'tool_calls', calls: simCalls, cut, timing, usage: usageOf(prompt, completion) };
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
  return { kind: 'text', text, pieces, cut, timing, usage: usageOf(prompt, approxTokens(text)) };
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
