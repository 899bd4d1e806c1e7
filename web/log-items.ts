/**
 * What the message log shows for a thread's state: one item per user message (and one per send
 * still in the outbox) and one per run with its approval requests (approvals.ts), in seq order.
 * Each item has a key, so that a paint keeps each item's element and view (user-view.ts,
 * turn-view.ts) and only brings them up to date.
 */
import type { ChatMessage, OutboxEntry, RunView, ThreadState } from '../protocol/client/index.js';
import { approvalsByRun, type Approval } from './approvals.js';

export type Item =
  | { kind: 'user'; key: string; content: string; pending: boolean }
  | { kind: 'turn'; key: string; run?: RunView; message?: ChatMessage; approvals?: Approval[] };

export function itemsOf(state: ThreadState | undefined, outbox: OutboxEntry[], threadId: string | undefined): Item[] {
  const items: Item[] = [];
  const placed = new Set<string>();
  // Each run's answer, found in one pass (a paint must not scan the messages once per message).
  const answers = new Map<string, ChatMessage>();
  for (const message of state?.messages ?? []) {
    if (message.role === 'assistant' && message.runId && !answers.has(message.runId)) answers.set(message.runId, message);
  }
  const approvals = state ? approvalsByRun(state.events) : undefined;
  const turnOf = (runId: string | undefined, message?: ChatMessage) => {
    const run = runId ? state?.runs[runId] : undefined;
    const key = `turn:${runId ?? message?.id}`;
    if (placed.has(key)) return;
    placed.add(key);
    items.push({
      kind: 'turn', key, run, message: message ?? (runId ? answers.get(runId) : undefined), approvals: runId ? approvals?.get(runId) : undefined,
    });
  };
  for (const message of state?.messages ?? []) {
    if (message.role === 'user') {
      items.push({ kind: 'user', key: `msg:${message.id}`, content: message.content, pending: false });
      if (message.runId) turnOf(message.runId);
    } else if (message.role === 'assistant') {
      turnOf(message.runId, message);
    }
  }
  for (const entry of outbox) {
    if (entry.threadId === threadId) items.push({ kind: 'user', key: `out:${entry.clientMessageId}`, content: entry.content, pending: true });
  }
  return items;
}

/** An item's element and how to bring it up to date. */
export interface ItemView {
  readonly element: HTMLElement;
  update(item: Item): void;
}
