/**
 * The list of the user's conversations beside the log: loaded when a session opens and after a
 * new conversation starts, rebuilt only when the list or the conversation shown changed; a click
 * shows that conversation.
 */
import type { ConversationClient } from '../protocol/client/index.js';
import type { ThreadView } from '../protocol/results.js';
import { el } from './dom.js';

export interface ThreadListHost {
  readonly client: ConversationClient | undefined;
  /** Shows a conversation; `announce` fires convo-thread-change. */
  select(threadId: string, announce: boolean): void;
  schedule(): void;
  fail(error: unknown): void;
}

export class ThreadList {
  private threads: ThreadView[] = [];
  /** What the list shows, so a paint rebuilds it only when that changes. */
  private shown?: { list: ThreadView[]; current?: string };

  constructor(private readonly element: HTMLUListElement, private readonly host: ThreadListHost) {}

  /** Loads the newest 50 conversations. */
  async refresh(): Promise<void> {
    try {
      this.threads = (await this.host.client!.listThreads({ limit: 50 })).threads;
      this.host.schedule();
    } catch (error) {
      this.host.fail(error);
    }
  }

  remove(threadId: string): void {
    this.threads = this.threads.filter((t) => t.id !== threadId);
  }

  title(threadId: string | undefined): string | null | undefined {
    return this.threads.find((t) => t.id === threadId)?.title;
  }

  paint(current: string | undefined): void {
    if (this.shown?.list === this.threads && this.shown.current === current) return;
    this.shown = { list: this.threads, current };
    this.element.replaceChildren(
      ...this.threads.map((thread) => {
        const item = el('li');
        const button = el('button', '', thread.title || `Conversation ${thread.id.slice(-6)}`);
        button.type = 'button';
        button.setAttribute('aria-current', String(thread.id === current));
        button.addEventListener('click', () => this.host.select(thread.id, true));
        item.append(button);
        return item;
      }),
    );
  }
}
