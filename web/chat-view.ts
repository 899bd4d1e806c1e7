/**
 * What the message log shows for a thread's state: one item per user message and one per run
 * (its tool activity, thinking state, streamed text and how it ended), in seq order. Each item has
 * a key and a view that updates its element in place: a streaming turn changes only its text (and
 * a tool's label when it finishes), so a screen reader is not handed the whole turn again, and a
 * paint costs what changed, not the size of every tool's arguments.
 */
import type { ChatMessage, OutboxEntry, RunView, ThreadState, ToolActivity } from '../protocol/client/index.js';
import { renderMarkdown } from './markdown.js';

export type Item =
  | { kind: 'user'; key: string; content: string; pending: boolean }
  | { kind: 'turn'; key: string; run?: RunView; message?: ChatMessage };

export function itemsOf(state: ThreadState | undefined, outbox: OutboxEntry[], threadId: string | undefined): Item[] {
  const items: Item[] = [];
  const placed = new Set<string>();
  // Each run's answer, found in one pass (a paint must not scan the messages once per message).
  const answers = new Map<string, ChatMessage>();
  for (const message of state?.messages ?? []) {
    if (message.role === 'assistant' && message.runId && !answers.has(message.runId)) answers.set(message.runId, message);
  }
  const turnOf = (runId: string | undefined, message?: ChatMessage) => {
    const run = runId ? state?.runs[runId] : undefined;
    const key = `turn:${runId ?? message?.id}`;
    if (placed.has(key)) return;
    placed.add(key);
    items.push({ kind: 'turn', key, run, message: message ?? (runId ? answers.get(runId) : undefined) });
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

export function createView(item: Item): ItemView {
  return item.kind === 'user' ? new UserView() : new TurnView();
}

class UserView implements ItemView {
  readonly element = el('div');
  private shown?: string;

  update(item: Item): void {
    if (item.kind !== 'user') return;
    const key = `${item.pending}|${item.content}`;
    if (key === this.shown) return;
    this.shown = key;
    this.element.className = `msg user${item.pending ? ' pending' : ''}`;
    this.element.setAttribute('part', 'message user-message');
    // The user's own text is shown as typed: text, never HTML.
    this.element.textContent = item.content;
    if (item.pending) this.element.title = 'Not sent yet';
    else this.element.removeAttribute('title');
  }
}

class TurnView implements ItemView {
  readonly element = el('article', 'turn');
  private readonly tools = el('div', 'tools');
  private readonly note = el('div', 'note');
  private agent?: HTMLElement;
  private text?: HTMLElement;
  private readonly toolViews = new Map<string, ToolView>();
  private shownText?: string;
  private shownNote?: string;

  constructor() {
    this.element.setAttribute('part', 'message assistant-message');
    this.tools.hidden = true;
    this.note.hidden = true;
    this.element.append(this.tools, this.note);
  }

  update(item: Item): void {
    if (item.kind !== 'turn') return;
    const { run, message } = item;
    const element = this.element;
    const active = run?.status === 'queued' || run?.status === 'running';
    // While the turn streams, assistive technology waits for it to settle instead of reading
    // every change (the log is a polite live region).
    setAttr(element, 'aria-busy', active ? 'true' : undefined);
    setAttr(element, 'data-streaming', String(Boolean(active && message?.streaming && message.content)));
    setAttr(element, 'data-status', run?.status ?? message?.status ?? 'completed');
    if (run?.agentName && !this.agent) {
      this.agent = el('div', 'agent', run.agentName);
      element.prepend(this.agent);
    }
    for (const tool of run?.tools ?? []) {
      let view = this.toolViews.get(tool.toolCallId);
      if (!view) {
        this.toolViews.set(tool.toolCallId, (view = new ToolView(tool)));
        this.tools.append(view.element);
        this.tools.hidden = false;
      }
      view.update(tool);
    }
    const content = message?.content ?? '';
    if (content !== (this.shownText ?? '')) {
      this.shownText = content;
      if (!this.text) {
        this.text = el('div', 'text');
        element.insertBefore(this.text, this.note);
      }
      this.text.innerHTML = renderMarkdown(content);
      this.text.hidden = content === '';
    }
    const note = noteOf(run, message);
    const noteKey = note ? `${note.kind}|${note.text}` : '';
    if (noteKey !== this.shownNote) {
      this.shownNote = noteKey;
      this.note.className = note ? `note ${note.kind}` : 'note';
      this.note.textContent = note?.text ?? '';
      this.note.hidden = !note;
    }
  }
}

class ToolView {
  readonly element: HTMLDetailsElement;
  private readonly summary: HTMLElement;
  private shownStatus?: ToolActivity['status'];
  private argumentsShown = false;

  constructor(tool: ToolActivity) {
    this.element = el('details', 'tool');
    this.element.dataset.id = tool.toolCallId;
    this.element.setAttribute('part', 'tool');
    this.summary = el('summary');
    this.element.append(this.summary);
  }

  /** Arguments are shown once; the label and the result when the status changes. */
  update(tool: ToolActivity): void {
    if (!this.argumentsShown && tool.arguments !== undefined) {
      this.argumentsShown = true;
      this.summary.after(el('div', 'note', 'Arguments'), el('pre', '', pretty(tool.arguments)));
    }
    if (tool.status === this.shownStatus) return;
    this.shownStatus = tool.status;
    this.element.dataset.status = tool.status;
    const label = { running: '', completed: ' — done', error: ' — failed', abandoned: ' — not finished' }[tool.status];
    this.summary.textContent = `Tool: ${tool.name}${label}`;
    if (tool.result !== undefined) {
      const heading = tool.status === 'error' ? 'Error' : `Result${tool.durationMs !== undefined ? ` (${tool.durationMs} ms)` : ''}`;
      this.element.append(el('div', 'note', heading), el('pre', '', tool.result));
    }
  }
}

function noteOf(run: RunView | undefined, message: ChatMessage | undefined): { kind: string; text: string } | undefined {
  const status = run?.status ?? message?.status;
  if (status === 'queued') return { kind: 'queued', text: 'Waiting for the assistant…' };
  if (status === 'running' && run?.thinking) return { kind: 'thinking', text: 'Thinking' };
  if (status === 'cancelled') return { kind: 'cancelled', text: 'Stopped' };
  if (status === 'failed') return { kind: 'failed', text: `The assistant could not finish: ${run?.error?.message ?? 'the turn failed.'}` };
  return undefined;
}

function pretty(value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function setAttr(element: HTMLElement, name: string, value: string | undefined): void {
  if (value === undefined) element.removeAttribute(name);
  else if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text?: string): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}
