/** A message the user sent, or one still waiting in the outbox ("Not sent yet"). */
import { el } from './dom.js';
import type { Item, ItemView } from './log-items.js';

export class UserView implements ItemView {
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
