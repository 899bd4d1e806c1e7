/**
 * The message log of one thread: keyed items (log-items.ts) kept in place and updated where they
 * changed; the reader's scroll position respected (follows the bottom only when the reader is
 * there); the way to older history, by scrolling up or by a button; and `aria-busy` on the log
 * while a page of history lands, so a screen reader does not read out a whole page as news.
 */
import type { OutboxEntry, ThreadState } from '../protocol/client/index.js';
import type { ApprovalHost } from './approval-view.js';
import { el } from './dom.js';
import { itemsOf, type Item, type ItemView } from './log-items.js';
import { TurnView } from './turn-view.js';
import { UserView } from './user-view.js';

export class LogView {
  private readonly rendered = new Map<string, ItemView>();
  private loads = 0;

  /** `wantOlder` is called when the reader asks for older history (or the page is too short to scroll). */
  constructor(readonly element: HTMLElement, private readonly wantOlder: () => void, private readonly host: ApprovalHost) {
    element.addEventListener('scroll', () => {
      if (element.scrollTop < 80) wantOlder();
    });
  }

  clear(): void {
    this.rendered.clear();
    this.element.replaceChildren();
  }

  /** Runs `load` with the log marked busy (loads may overlap: busy until the last one ends). */
  async busy<T>(load: () => Promise<T>): Promise<T> {
    this.loads += 1;
    this.element.setAttribute('aria-busy', 'true');
    try {
      return await load();
    } finally {
      if (--this.loads === 0) this.element.removeAttribute('aria-busy');
    }
  }

  paint(state: ThreadState | undefined, outbox: OutboxEntry[], threadId: string | undefined): void {
    const log = this.element;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const items = itemsOf(state, outbox, threadId);
    const keep = new Set(items.map((i) => i.key));
    for (const [key, view] of this.rendered) {
      if (!keep.has(key)) {
        view.element.remove();
        this.rendered.delete(key);
      }
    }
    log.querySelector(':scope > .empty')?.remove();
    // Older history: loaded by scrolling up, or by this button (keyboard users do not scroll).
    let previous: Element | null = null;
    if (state?.hasOlder) {
      previous = log.querySelector(':scope > .older') ?? this.olderButton();
      if (log.firstElementChild !== previous) log.prepend(previous);
    } else {
      log.querySelector(':scope > .older')?.remove();
    }
    for (const item of items) {
      let view = this.rendered.get(item.key);
      if (!view) this.rendered.set(item.key, (view = createView(item, this.host)));
      view.update(item);
      const expected: Element | null = previous ? previous.nextElementSibling : log.firstElementChild;
      if (expected !== view.element) log.insertBefore(view.element, expected);
      previous = view.element;
    }
    if (items.length === 0) log.append(el('p', 'empty', threadId ? 'Loading the conversation…' : 'Start a new conversation: type a message below.'));
    if (atBottom) log.scrollTop = log.scrollHeight;
    // A page too short to scroll: the next one at once.
    if (state?.hasOlder && log.scrollHeight <= log.clientHeight + 80) this.wantOlder();
  }

  /** Runs `load` (which adds older items above, and says whether it did) without moving what the reader is looking at. */
  async keepingPosition(load: () => Promise<boolean>): Promise<void> {
    const fromBottom = this.element.scrollHeight - this.element.scrollTop;
    if (await load()) this.element.scrollTop = this.element.scrollHeight - fromBottom;
  }

  private olderButton(): HTMLElement {
    const button = el('button', 'older secondary', 'Show earlier messages');
    button.type = 'button';
    button.addEventListener('click', () => this.wantOlder());
    return button;
  }
}

/** The view of a new item: a user message or a turn. */
function createView(item: Item, host: ApprovalHost): ItemView {
  return item.kind === 'user' ? new UserView() : new TurnView(host);
}
