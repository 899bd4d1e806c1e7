/**
 * What a resumed turn goes on from, read from the thread's stored messages: the history its
 * prompt is built from, the step whose tool calls are still pending (the assistant message that
 * asked for them, with the results already stored), and how many tool-calling steps the answer
 * has made (they count against the agent's max_tool_iterations).
 */
import type { Message, ToolCallRecord } from '../../db/schema.js';

export interface PendingStep {
  /** The step's calls, in the order the model gave them. */
  calls: ToolCallRecord[];
  /** Results already stored, by call id. */
  results: Map<string, string>;
}

export interface StoredTurn {
  /** The messages the prompt is built from (the pending step left out: the turn adds it back whole). */
  history: Message[];
  pending?: PendingStep;
  /** Model steps of the answer that asked for tools. */
  steps: number;
}

/**
 * A fresh turn (or a takeover, which restarts the answer) starts from the history as it is; a
 * resumed one from where its last step stopped.
 */
export function readStoredTurn(messages: Message[], runId: string, resumed: boolean): StoredTurn {
  if (!resumed) return { history: messages, steps: 0 };
  const asked = messages.filter((m) => m.run_id === runId && m.role === 'assistant' && (m.tool_calls?.length ?? 0) > 0);
  const last = asked.at(-1);
  if (!last) return { history: messages, steps: 0 };
  const ids = new Set(last.tool_calls!.map((call) => call.id));
  const answers = messages.slice(messages.indexOf(last) + 1).filter((m) => m.role === 'tool' && m.run_id === runId && ids.has(m.tool_call_id ?? ''));
  const results = new Map<string, string>();
  for (const answer of answers) if (!results.has(answer.tool_call_id!)) results.set(answer.tool_call_id!, answer.content);
  if (results.size === ids.size) return { history: messages, steps: asked.length };
  return {
    history: messages.filter((m) => m !== last && !answers.includes(m)),
    pending: { calls: last.tool_calls!, results },
    steps: asked.length,
  };
}
