/**
 * One run in the message log: the agent's name, its tool activity (tool-view.ts), each call that
 * asks for approval shown just before it (approval-view.ts), the streamed text as Markdown, and a
 * note on its state (queued, thinking, stopped, failed). The element is
 * updated in place: a streaming turn changes only its text (and a tool's label when it finishes),
 * so a screen reader is not handed the whole turn again, and a paint costs what changed.
 */
import type { ChatMessage, RunView } from '../protocol/client/index.js';
import type { Approval } from './approvals.js';
import { ApprovalView, type ApprovalHost } from './approval-view.js';
import { el, setAttr } from './dom.js';
import type { Item, ItemView } from './log-items.js';
import { renderMarkdown } from './markdown.js';
import { ToolView } from './tool-view.js';

export class TurnView implements ItemView {
  readonly element = el('article', 'turn');
  private readonly tools = el('div', 'tools');
  private readonly note = el('div', 'note');
  private agent?: HTMLElement;
  private text?: HTMLElement;
  private readonly toolViews = new Map<string, ToolView>();
  private readonly approvalViews = new Map<string, ApprovalView>();
  private shownText?: string;
  private shownNote?: string;

  constructor(private readonly host: ApprovalHost) {
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
    const approvals = new Map(item.approvals?.map((a) => [a.toolCallId, a]));
    for (const tool of run?.tools ?? []) {
      // The request goes before the call it asked about (a paint after a reload makes both at once).
      const approval = approvals.get(tool.toolCallId);
      if (approval) this.showApproval(approval, run);
      approvals.delete(tool.toolCallId);
      let view = this.toolViews.get(tool.toolCallId);
      if (!view) {
        this.toolViews.set(tool.toolCallId, (view = new ToolView(tool)));
        this.tools.append(view.element);
        this.tools.hidden = false;
      }
      view.update(tool);
    }
    for (const approval of approvals.values()) this.showApproval(approval, run);
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

  private showApproval(approval: Approval, run: RunView | undefined): void {
    let view = this.approvalViews.get(approval.toolCallId);
    if (!view) {
      this.approvalViews.set(approval.toolCallId, (view = new ApprovalView(approval, this.host)));
      this.tools.append(view.element);
      this.tools.hidden = false;
    }
    view.update(approval, run?.status === 'waiting' && run.pending?.toolCallId === approval.toolCallId);
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
