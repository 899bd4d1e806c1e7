/**
 * A tool call that waits for the user's approval, in its turn: the tool's name and arguments
 * (arguments-view.ts), when the request expires, and Approve / Deny; Deny opens a box for an
 * optional reason (Enter sends, Escape goes back). The buttons are disabled while the answer is
 * on its way; a failure is shown and they come back. The decision shown is the stored one
 * (`approval_resolved`, which every page of the user receives: an answer from another tab, an
 * expiry, a stopped run), or until it arrives the server's answer to this page. The outcome line
 * is a polite live region, so a screen reader hears the change of state.
 */
import { ConversationError, type ConversationClient } from '../protocol/client/index.js';
import { argumentsView } from './arguments-view.js';
import type { Approval } from './approvals.js';
import { el } from './dom.js';
import { approvalError, decisionText } from './messages.js';

export interface ApprovalHost {
  readonly client: ConversationClient | undefined;
  /** Sends a DOM event from the element to the page (`convo-approval` after an answer). */
  fire(type: string, detail: unknown): void;
}

/** What this page did: an answer under way, its result, or why it failed. */
interface Local {
  sending?: boolean;
  answered?: Approval['decision'];
  /** `already_answered`: another page did; the stored decision is on its way. */
  elsewhere?: boolean;
  error?: string;
}

export class ApprovalView {
  readonly element = el('div', 'approval');
  private readonly actions = el('div', 'actions');
  private readonly approveButton = button('Approve', 'primary', 'approve-button');
  private readonly denyButton = button('Deny', 'secondary', 'deny-button');
  private readonly form = el('form', 'actions');
  private readonly reason = el('input');
  private readonly sendDenial = button('Send denial', 'secondary', 'deny-send-button');
  private readonly expiry = el('p', 'note');
  private readonly outcome = el('p', 'outcome');
  private approval: Approval;
  /** The run waits for this call (its `pending`). */
  private open = false;
  private local: Local = {};
  private denying = false;
  private shown?: string;

  constructor(approval: Approval, private readonly host: ApprovalHost) {
    this.approval = approval;
    const element = this.element;
    element.setAttribute('part', 'approval');
    element.setAttribute('role', 'group');
    element.setAttribute('aria-label', `Approval for ${approval.toolName}`);
    element.dataset.id = approval.toolCallId;
    const title = el('div', 'title', 'The assistant wants to run ');
    title.append(el('code', '', approval.toolName));
    const time = el('time', '', new Date(approval.expiresAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
    time.dateTime = approval.expiresAt;
    this.expiry.append('Answer by ', time, '; unanswered, it is not run.');
    const label = el('label', '', 'Reason (optional)');
    label.append(this.reason);
    this.reason.setAttribute('part', 'deny-reason');
    this.reason.maxLength = 2000;
    const back = button('Back', 'secondary', 'deny-back-button');
    this.form.append(label, this.sendDenial, back);
    this.sendDenial.type = 'submit';
    this.actions.append(this.approveButton, this.denyButton);
    this.outcome.setAttribute('aria-live', 'polite');
    this.outcome.setAttribute('part', 'approval-outcome');
    this.outcome.tabIndex = -1;
    element.append(title, argumentsView(approval.arguments), this.expiry, this.actions, this.form, this.outcome);

    this.approveButton.addEventListener('click', () => void this.answer(true));
    this.denyButton.addEventListener('click', () => this.toggleDenying(true));
    back.addEventListener('click', () => this.toggleDenying(false));
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.answer(false, this.reason.value.trim() || undefined);
    });
    this.form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.toggleDenying(false);
    });
  }

  /** The request as the events now tell it; `open`: the run still waits for it. */
  update(approval: Approval, open: boolean): void {
    this.approval = approval;
    this.open = open;
    this.render();
  }

  private toggleDenying(on: boolean): void {
    this.denying = on;
    this.render();
    (on ? this.reason : this.denyButton).focus();
  }

  private async answer(approved: boolean, reason?: string): Promise<void> {
    const chat = this.host.client;
    const { threadId, runId, toolCallId, toolName } = this.approval;
    if (!chat || this.local.sending) return;
    const hadFocus = this.element.matches(':focus-within');
    this.local = { sending: true };
    this.render();
    try {
      const { status } = await chat.approve(runId, toolCallId, approved, reason);
      const decision = { status: status === 'approved' ? 'approved' : 'denied', ...(reason !== undefined ? { reason } : {}) } as const;
      this.local = { answered: decision };
      this.host.fire('convo-approval', { threadId, runId, toolCallId, toolName, decision: decision.status, ...(reason !== undefined ? { reason } : {}) });
    } catch (error) {
      const e = error instanceof ConversationError ? error : new ConversationError('internal_error', String((error as Error)?.message ?? error));
      this.local = e.code === 'already_answered' ? { elsewhere: true } : { error: approvalError(e.code, e.message, e.retryAfterMs) };
    }
    this.render();
    // The buttons that had the focus are gone or were disabled: the outcome takes it.
    if (hadFocus) (this.open && this.local.error ? (this.denying ? this.reason : this.approveButton) : this.outcome).focus();
  }

  private render(): void {
    const { local, open } = this;
    const decision = this.approval.decision ?? local.answered;
    const asking = !decision && !local.elsewhere && open;
    const text = decision
      ? decisionText(decision.status, decision.reason)
      : local.elsewhere ? 'Already answered' : !open ? 'No longer waiting for an answer' : local.sending ? 'Sending…' : local.error ?? '';
    const key = `${asking}|${this.denying}|${local.sending}|${decision?.status}|${text}`;
    if (key === this.shown) return;
    this.shown = key;
    this.element.dataset.state = decision?.status ?? (asking ? 'pending' : 'closed');
    this.actions.hidden = !asking || this.denying;
    this.form.hidden = !asking || !this.denying;
    this.expiry.hidden = !asking;
    for (const control of [this.approveButton, this.denyButton, this.sendDenial, this.reason]) control.disabled = Boolean(local.sending);
    this.outcome.className = asking && local.error ? 'outcome error' : 'outcome';
    // Never hidden: a live region must be on the page before its text changes to be heard.
    this.outcome.textContent = text;
  }
}

function button(text: string, className: string, part: string): HTMLButtonElement {
  const element = el('button', className, text);
  element.type = 'button';
  element.setAttribute('part', part);
  return element;
}
