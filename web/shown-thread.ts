/**
 * The conversation the log shows, and the client's subscriptions that come with it. Opening a
 * thread loads its newest page of history, then follows it live; older pages load as the reader
 * scrolls up (log-view.ts). A connection may follow only so many threads
 * (MAX_SUBSCRIPTIONS_PER_CONNECTION): a thread no longer shown is let go, unless a run still
 * streams on it (then at its agent_completed); its state stays with the client for a return.
 */
import type { ConversationClient } from '../protocol/client/index.js';
import type { ApprovalHost } from './approval-view.js';
import { LogView } from './log-view.js';

export interface ShownThreadHost extends ApprovalHost {
  readonly client: ConversationClient | undefined;
  /** Events per history page. */
  readonly pageSize: number;
  schedule(): void;
  paint(): void;
  fail(error: unknown): void;
}

export class ShownThread {
  /** The thread shown; undefined: a new conversation, not sent yet. */
  current?: string;
  readonly log: LogView;
  private readonly opening = new Set<string>();
  private loadingOlder = false;

  constructor(logElement: HTMLElement, private readonly host: ShownThreadHost) {
    this.log = new LogView(logElement, () => void this.loadOlder(), host);
  }

  /** A new client: nothing is being opened any more. */
  reset(): void {
    this.opening.clear();
    this.log.clear();
  }

  /** Shows `threadId` instead of the current one (which is let go); false when it is already shown. */
  switchTo(threadId: string | undefined): boolean {
    if (threadId === this.current) return false;
    const left = this.current;
    this.current = threadId;
    if (left) this.release(left);
    this.log.clear();
    return true;
  }

  /**
   * Shows a thread: its newest page of history, then its live events. The reader may move on while
   * either is under way: after each step the thread must still be the one shown, or it is not
   * followed (or let go again).
   */
  async open(threadId: string): Promise<void> {
    const chat = this.host.client;
    if (!chat || this.opening.has(threadId) || chat.thread(threadId)?.following) return;
    this.opening.add(threadId);
    const shown = () => this.host.client === chat && this.current === threadId;
    try {
      await this.log.busy(() => chat.history(threadId, { limit: this.host.pageSize }));
      if (!shown()) return;
      await chat.follow(threadId);
      if (!shown()) this.release(threadId);
    } catch (error) {
      if (shown()) this.host.fail(error);
    } finally {
      this.opening.delete(threadId);
      this.host.schedule();
    }
  }

  /** Lets a thread go unless it is shown or a run still streams on it. */
  release(threadId: string): void {
    const chat = this.host.client;
    const state = chat?.thread(threadId);
    if (!chat || !state?.following || state.activeRunId || threadId === this.current) return;
    chat.unfollow(threadId).catch(() => {});
  }

  paint(): void {
    const chat = this.host.client;
    this.log.paint(this.current ? chat?.thread(this.current) : undefined, chat?.outbox ?? [], this.current);
  }

  private async loadOlder(): Promise<void> {
    const state = this.current ? this.host.client?.thread(this.current) : undefined;
    if (!state || !state.hasOlder || this.loadingOlder) return;
    this.loadingOlder = true;
    try {
      const chat = this.host.client!;
      await this.log.busy(() => this.log.keepingPosition(async () => {
        await chat.history(state.threadId, { limit: this.host.pageSize });
        // The reader may have moved to another conversation meanwhile: its log stays as it is.
        if (this.host.client !== chat || this.current !== state.threadId) return false;
        this.host.paint();
        return true;
      }));
    } catch (error) {
      if (this.current === state.threadId) this.host.fail(error);
    } finally {
      this.loadingOlder = false;
      this.host.schedule();
    }
  }
}
