/**
 * Reading a Chat Completions request for the simulator: the minimal shape check, the text of a
 * message, the tools offered, and the token estimate its usage reports. Pure.
 *
 * Token counts (approximation, ~4 chars per token, min 1 for non-empty text):
 *   prompt_tokens = Σ messages (3 + tokens(content text) + tokens(tool call name+args))
 *                   + tokens(JSON of `tools`)
 *   completion_tokens = tokens(reply text), or Σ tokens(tool name + arguments) + tokens(said text)
 */
import { createHash } from 'node:crypto';

/** The usage a reply reports. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

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

export function offeredToolNames(body: any): string[] {
  if (!Array.isArray(body?.tools)) return [];
  const names: string[] = [];
  for (const t of body.tools) {
    const n = t?.function?.name;
    if (typeof n === 'string') names.push(n);
  }
  return names;
}

export function promptTokens(body: any): number {
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

export function usageOf(prompt: number, completion: number): Usage {
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
