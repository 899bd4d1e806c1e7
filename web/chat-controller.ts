/**
 * What `<convo-chat>` does, apart from being an element (convo-chat.ts: its attributes, properties
 * and lifecycle): the ConversationClient behind it, made anew when the settings change, and what
 * its events do on screen; which conversation shows (shown-thread.ts), the thread list
 * (thread-list.ts) and the composer (composer.ts), painted once per frame; and the DOM events that
 * tell the host what happens.
 */
import { ConversationClient, ConversationError, type ConnectionStatus, type StatusDetail } from '../protocol/client/index.js';
import type { MessageSendResult, ThreadEvent } from '../protocol/frames.js';
import { buildShell, type Shell } from './chat-shell.js';
import { Composer } from './composer.js';
import { explain, statusText } from './messages.js';
import { ShownThread } from './shown-thread.js';
import { ThreadList } from './thread-list.js';
import { endpointTokenSource, type TokenCallback } from './token-source.js';

/** The element's settings, as its properties give them (attributes or values set on it). */
export interface ChatElement extends HTMLElement {
  readonly server: string;
  readonly token: TokenCallback | undefined;
  readonly tokenEndpoint: string | null;
  readonly agent: string | null;
  readonly thread: string | null;
}

export class ChatController {
  private chat?: ConversationClient;
  private frame = 0;
  private readonly ui: Shell;
  private readonly shown: ShownThread;
  private readonly threads: ThreadList;
  private readonly composer: Composer;

  constructor(private readonly element: ChatElement) {
    const ui = (this.ui = buildShell(element));
    this.shown = new ShownThread(ui.log, this);
    this.threads = new ThreadList(ui.list, this);
    this.composer = new Composer(ui, this);
    ui.newButton.addEventListener('click', () => this.select(undefined, true));
  }

  /** The client, while the element is connected and configured. */
  get client(): ConversationClient | undefined {
    return this.chat;
  }

  /** The thread shown (undefined: a new conversation). */
  get threadId(): string | undefined {
    return this.shown.current;
  }

  get agent(): string | null {
    return this.element.agent;
  }

  /** Events per history page (`history-page`, 1 to 500). @defaultValue 50 */
  get pageSize(): number {
    const value = Number(this.element.getAttribute('history-page'));
    return Number.isInteger(value) && value >= 1 && value <= 500 ? value : 50;
  }

  /** Closes the client; the element left the page. */
  close(): void {
    this.chat?.close();
    this.chat = undefined;
  }

  /** A new client for the current settings (the old one, if any, is closed). */
  restart(): void {
    this.close();
    this.shown.reset();
    this.composer.reset();
    if (!this.tokenSource()) {
      this.showStatus('idle', { attempt: 0 });
      this.showError('Set a token-endpoint attribute or a token property to connect.');
      return;
    }
    const token = () => {
      const source = this.tokenSource();
      // The source was taken away: asking again will not help (the client stops, see `refused`).
      if (!source) throw Object.assign(new Error('Set a token-endpoint attribute or a token property to connect.'), { fatal: true });
      return source();
    };
    const chat = new ConversationClient({ url: this.element.server, token });
    this.chat = chat;
    chat.on('status', (status, detail) => {
      this.showStatus(status, detail);
      if (status === 'open') this.showError(undefined);
    });
    chat.on('ready', (session) => {
      this.fire('convo-ready', { session });
      void this.threads.refresh();
      const wanted = this.shown.current ?? this.element.thread ?? undefined;
      if (wanted && !chat.thread(wanted)?.following) void this.shown.open(wanted);
    });
    chat.on('thread', (state) => {
      if (state.threadId === this.shown.current) this.schedule();
    });
    chat.on('event', (event) => {
      if (event.type !== 'agent_completed') return;
      const { thread_id, message, status } = (event as ThreadEvent<'agent_completed'>).payload;
      this.fire('convo-message', { threadId: thread_id, message, status });
      // A thread left while it streamed is let go now that its run is over.
      this.shown.release(thread_id);
    });
    chat.on('outbox', () => this.schedule());
    chat.on('threadDeleted', (threadId) => {
      this.threads.remove(threadId);
      if (threadId === this.shown.current) this.select(undefined, true);
      this.schedule();
    });
    chat.on('refused', (refusal) => this.fail(new ConversationError(refusal.code, refusal.message)));
    chat.on('error', (error) => this.fail(error));
    this.shown.current = this.element.thread ?? undefined;
    this.schedule();
  }

  /** Where the next token comes from: the token property, else the token-endpoint attribute. */
  private tokenSource(): TokenCallback | undefined {
    const endpoint = this.element.tokenEndpoint;
    return this.element.token ?? (endpoint ? endpointTokenSource(endpoint, this.element.getAttribute('token-method')?.toUpperCase() === 'GET' ? 'GET' : 'POST') : undefined);
  }

  /** Shows a conversation (undefined: a new one); `announce` fires convo-thread-change. */
  select(threadId: string | undefined, announce: boolean): void {
    if (!this.shown.switchTo(threadId)) return;
    this.showError(undefined);
    if (threadId) void this.shown.open(threadId);
    if (announce) this.fire('convo-thread-change', { threadId: threadId ?? null });
    this.schedule();
    if (!threadId) this.ui.input.focus();
  }

  /** The composer's message was stored: a new conversation is now the one shown. */
  sent(ack: MessageSendResult, threadId: string | undefined): void {
    this.showError(undefined);
    if (threadId === undefined && this.shown.current === undefined) {
      this.shown.current = ack.thread_id;
      this.fire('convo-thread-change', { threadId: ack.thread_id });
      void this.threads.refresh();
    }
    this.schedule();
  }

  // ---- rendering and reporting --------------------------------------------------------------------

  /** Paints at the next animation frame (once, however often it is asked). */
  schedule(): void {
    if (this.frame) return;
    const run = () => {
      this.frame = 0;
      this.paint();
    };
    this.frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(run) : (setTimeout(run, 16) as unknown as number);
  }

  paint(): void {
    const current = this.shown.current;
    this.ui.title.textContent = this.element.getAttribute('heading') ?? (current ? this.threads.title(current) ?? 'Conversation' : 'New conversation');
    this.threads.paint(current);
    this.shown.paint();
    this.composer.paint(current ? this.chat?.thread(current)?.activeRunId : undefined);
  }

  /** The connection indicator (its words are in messages.ts). */
  private showStatus(status: ConnectionStatus, detail: StatusDetail): void {
    this.ui.status.dataset.state = status;
    this.ui.status.textContent = statusText(status, detail);
    this.fire('convo-status', { status, detail });
  }

  private showError(text: string | undefined): void {
    this.ui.alert.hidden = !text;
    this.ui.alert.textContent = text ?? '';
  }

  /** Shows what went wrong and tells the host (convo-error). */
  fail(error: unknown): void {
    const e = error instanceof ConversationError ? error : new ConversationError('internal_error', String((error as Error)?.message ?? error));
    this.showError(explain(e.code, e.message, e.retryAfterMs));
    this.fire('convo-error', { code: e.code, message: e.message });
  }

  /** A DOM event for the host page: it bubbles and crosses shadow roots. */
  fire(type: string, detail: unknown): void {
    this.element.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}
