/**
 * What the message log shows for a thread's state: one item per user message and one per run
 * (its tool activity, thinking state, streamed text and how it ended), in seq order. Each item
 * has a key and a signature, so the element only rebuilds the items that changed.
 */
import type { ChatMessage, OutboxEntry, RunView, ThreadState, ToolActivity } from '../protocol/client/index.js';
import { renderMarkdown } from './markdown.js';

export type Item =
  | { kind: 'user'; key: string; content: string; pending: boolean }
  | { kind: 'turn'; key: string; run?: RunView; message?: ChatMessage };

export function itemsOf(state: ThreadState | undefined, outbox: OutboxEntry[], threadId: string | undefined): Item[] {
  const items: Item[] = [];
  const placed = new Set<string>();
  const turnOf = (runId: string | undefined, message?: ChatMessage) => {
    const run = runId ? state?.runs[runId] : undefined;
    const key = `turn:${runId ?? message?.id}`;
    if (placed.has(key)) return;
    placed.add(key);
    const text = message ?? state?.messages.find((m) => m.role === 'assistant' && m.runId === runId);
    items.push({ kind: 'turn', key, run, message: text });
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

export function signature(item: Item): string {
  return item.kind === 'user'
    ? `${item.pending}|${item.content}`
    : JSON.stringify([item.run?.status, item.run?.thinking, item.run?.agentName, item.run?.tools, item.run?.error, item.message?.content, item.message?.streaming]);
}

export function renderItem(element: HTMLElement, item: Item): void {
  // Tool details the reader opened stay open while the turn streams on.
  const opened = new Set([...element.querySelectorAll<HTMLElement>('details[open]')].map((d) => d.dataset.id));
  element.replaceChildren();
  if (item.kind === 'user') {
    element.className = `msg user${item.pending ? ' pending' : ''}`;
    element.setAttribute('part', 'message user-message');
    // The user's own text is shown as typed: text, never HTML.
    element.textContent = item.content;
    if (item.pending) element.title = 'Not sent yet';
    return;
  }
  const { run, message } = item;
  element.className = 'turn';
  element.setAttribute('part', 'message assistant-message');
  const active = run?.status === 'queued' || run?.status === 'running';
  element.dataset.streaming = String(Boolean(active && message?.streaming && message.content));
  element.dataset.status = run?.status ?? message?.status ?? 'completed';
  if (run?.agentName) element.append(el('div', 'agent', run.agentName));
  for (const tool of run?.tools ?? []) {
    const view = toolView(tool);
    view.open = opened.has(tool.toolCallId);
    element.append(view);
  }
  if (message && message.content) {
    const text = el('div', 'text');
    text.innerHTML = renderMarkdown(message.content);
    element.append(text);
  }
  const note = noteOf(run, message);
  if (note) element.append(el('div', `note ${note.kind}`, note.text));
}

function noteOf(run: RunView | undefined, message: ChatMessage | undefined): { kind: string; text: string } | undefined {
  const status = run?.status ?? message?.status;
  if (status === 'queued') return { kind: 'queued', text: 'Waiting for the assistant…' };
  if (status === 'running' && run?.thinking) return { kind: 'thinking', text: 'Thinking' };
  if (status === 'cancelled') return { kind: 'cancelled', text: 'Stopped' };
  if (status === 'failed') return { kind: 'failed', text: `The assistant could not finish: ${run?.error?.message ?? 'the turn failed.'}` };
  return undefined;
}

function toolView(tool: ToolActivity): HTMLDetailsElement {
  const details = el('details', 'tool');
  details.dataset.status = tool.status;
  details.dataset.id = tool.toolCallId;
  details.setAttribute('part', 'tool');
  const label = tool.status === 'error' ? ' — failed' : tool.status === 'completed' ? ' — done' : '';
  details.append(el('summary', '', `Tool: ${tool.name}${label}`));
  if (tool.arguments !== undefined) details.append(el('div', 'note', 'Arguments'), el('pre', '', pretty(tool.arguments)));
  if (tool.result !== undefined) {
    details.append(el('div', 'note', tool.status === 'error' ? 'Error' : `Result${tool.durationMs !== undefined ? ` (${tool.durationMs} ms)` : ''}`), el('pre', '', tool.result));
  }
  return details;
}

function pretty(value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text?: string): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}
