/**
 * Builds the prompt for a turn from the thread's stored messages, in the OpenAI chat format:
 * system prompt, then user / assistant (with tool_calls) / tool messages, cut to a token budget.
 *
 * The unit of history is the turn: a user message and everything its run wrote (tool rounds, the
 * final answer). Turns are kept or dropped whole, oldest first, because half a turn is either an
 * answer without its question or a tool call without its result, and the API rejects the latter.
 * Each turn is also repaired on its own, so whichever turns survive the cut, the list is valid.
 */
import type OpenAI from 'openai';
import type { Agent, Message } from '../db/schema.js';

export type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** The default prompt budget, in estimated tokens, until configuration provides one. */
export const DEFAULT_CONTEXT_TOKENS = 16_000;

/** What the chat format adds around each message (role, separators), which its text does not show. */
export const MESSAGE_OVERHEAD_TOKENS = 4;

export interface PromptOptions {
  /** Messages only: the tool definitions and the reply need room beyond this. */
  budgetTokens?: number;
  /** Swap in a real tokenizer; the default is `estimateTokens`. */
  countTokens?: (text: string) => number;
  /**
   * The run being answered. Under the `enqueue` busy policy a later send stores its user message
   * while this run is still queued or streaming, so "the last user message" is not always this
   * run's: with the id, this run's turn is the latest and turns of later runs are left out.
   */
  runId?: string;
}

/**
 * ~4 characters per token, OpenAI's rule of thumb for English text. It only has to be good enough
 * to stay under the model's window with the budget's margin; pass `countTokens` to be exact.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The estimate of one message: its text, its tool_calls as the JSON the API receives, and framing. */
export function messageTokens(message: ChatMessage, countTokens: (text: string) => number = estimateTokens): number {
  let tokens = MESSAGE_OVERHEAD_TOKENS + (typeof message.content === 'string' ? countTokens(message.content) : 0);
  if (message.role === 'assistant' && message.tool_calls?.length) tokens += countTokens(JSON.stringify(message.tool_calls));
  return tokens;
}

export function buildPrompt(agent: Agent, history: Message[], options: PromptOptions = {}): ChatMessage[] {
  const budget = options.budgetTokens ?? DEFAULT_CONTEXT_TOKENS;
  const cost = (messages: ChatMessage[]) => messages.reduce((sum, m) => sum + messageTokens(m, options.countTokens), 0);
  const system: ChatMessage[] = agent.system_prompt ? [{ role: 'system', content: agent.system_prompt }] : [];
  const turns = splitTurns(history, options.runId).map(toChatMessages);
  // The instructions and the question being answered are kept even over budget: without them
  // the reply is wrong, whereas an over-long prompt at worst fails loudly.
  const latest = turns.pop() ?? [];
  let used = cost(system) + cost(latest);
  // Walk back from the newest; stopping at the first turn that does not fit (rather than skipping
  // it for a smaller, older one) keeps the history one unbroken stretch.
  let first = turns.length;
  while (first > 0 && used + cost(turns[first - 1]!) <= budget) used += cost(turns[--first]!);
  return [...system, ...turns.slice(first).flat(), ...latest];
}

/**
 * Groups rows into turns by run: every row a run writes carries its run_id, and so does the user
 * message that started it. Grouping by run rather than by position matters because a user
 * message sent while an earlier run streams is stored between that run's rows. Rows without a
 * run fall back to position: a user row starts a turn, anything else joins the newest one.
 */
function splitTurns(history: Message[], runId: string | undefined): Message[][] {
  const turns: Message[][] = [];
  const byRun = new Map<string, Message[]>();
  for (const row of history) {
    let turn = row.run_id ? byRun.get(row.run_id) : undefined;
    if (!turn) {
      if (row.role === 'user' || row.run_id || turns.length === 0) turns.push((turn = []));
      else turn = turns[turns.length - 1]!;
      if (row.run_id) byRun.set(row.run_id, turn);
    }
    turn.push(row);
  }
  const current = runId ? byRun.get(runId) : undefined;
  return current ? turns.slice(0, turns.indexOf(current) + 1) : turns;
}

/**
 * One turn's rows as chat messages, repaired: the API wants every tool_calls message followed at
 * once by a result for each call and by nothing else first. A cancelled or failed run can leave
 * calls without results (the calls are dropped, the text kept) and tool rows are only ever
 * emitted as answers to the calls just before them, so an orphan result disappears.
 */
function toChatMessages(rows: Message[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.role === 'user' || row.role === 'system') messages.push({ role: row.role, content: row.content });
    if (row.role !== 'assistant') continue;
    const results = new Map<string, string>();
    while (rows[i + 1]?.role === 'tool') {
      const result = rows[++i]!;
      if (result.tool_call_id && !results.has(result.tool_call_id)) results.set(result.tool_call_id, result.content);
    }
    // Taking each result out as it is used also drops a repeated call id.
    const answered = (row.tool_calls ?? []).flatMap((call) => {
      const content = results.get(call.id);
      results.delete(call.id);
      return content === undefined ? [] : [{ call, content }];
    });
    if (answered.length > 0) {
      messages.push({ role: 'assistant', content: row.content || null, tool_calls: answered.map((a) => a.call) });
      for (const { call, content } of answered) messages.push({ role: 'tool', tool_call_id: call.id, content });
    } else if (row.content) {
      // An empty answer (a run cancelled before any text) says nothing and the API refuses it.
      messages.push({ role: 'assistant', content: row.content });
    }
  }
  return messages;
}
