/**
 * `<convo-chat>`: the chat widget. A custom element with its own shadow root, driven by one
 * ConversationClient. Configured by attributes (strings) or the matching properties, so it works
 * in a plain page and in React/Next.js alike; it tells the host what happens with DOM events
 * (`convo-status`, `convo-ready`, `convo-thread-change`, `convo-message`, `convo-error`), which
 * bubble and cross shadow roots.
 */
import { ConversationClient, ConversationError, newClientMessageId, type ConnectionStatus, type StatusDetail } from '../protocol/client/index.js';
import type { ThreadEvent } from '../protocol/frames.js';
import type { ThreadView } from '../protocol/results.js';
import { el } from './chat-view.js';
import { LogView } from './log-view.js';
import { explain, statusText } from './messages.js';
import { styles } from './styles.js';
import { endpointTokenSource, type TokenCallback } from './token-source.js';

// Server-side rendering (Next.js) imports this module where there is no DOM: the class still loads.
const Base = (typeof HTMLElement === 'undefined' ? class {} : HTMLElement) as typeof HTMLElement;

const TEMPLATE = `
<div class="root" part="root"><div class="layout">
  <nav class="threads" part="thread-list" aria-label="Conversations">
    <button type="button" class="new" part="new-button">New conversation</button>
    <ul></ul>
  </nav>
  <section class="main">
    <header part="header"><span class="title"></span><span class="status" role="status" part="status"></span></header>
    <div class="log" role="log" aria-live="polite" aria-label="Messages" tabindex="0" part="log"></div>
    <div class="alert" role="alert" part="error" hidden></div>
    <form part="composer">
      <textarea aria-label="Message" rows="1" placeholder="Write a message…" part="input"></textarea>
      <button type="button" class="secondary" part="stop-button" hidden>Stop</button>
      <button type="submit" class="primary" part="send-button">Send</button>
    </form>
  </section>
</div></div>`;

export class ConvoChat extends Base {
  static observedAttributes = ['server', 'token-endpoint', 'token-method', 'agent', 'thread', 'heading'];

  private tokenCallback?: TokenCallback;
  private chat?: ConversationClient;
  private current?: string;
  private threadList: ThreadView[] = [];
  private readonly log: LogView;
  private frame = 0;
  private loadingOlder = false;
  private readonly opening = new Set<string>();
  /** The last send that failed: sent again unchanged, it keeps its client_message_id (stored once). */
  private failedSend?: { content: string; threadId?: string; clientMessageId: string };
  /** What the thread list shows, so a paint rebuilds it only when that changes. */
  private shownThreads?: { list: ThreadView[]; current?: string };
  private readonly ui!: {
    list: HTMLUListElement; log: HTMLElement; status: HTMLElement; title: HTMLElement; alert: HTMLElement;
    input: HTMLTextAreaElement; send: HTMLButtonElement; stop: HTMLButtonElement; form: HTMLFormElement; newButton: HTMLButtonElement;
  };

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = styles;
    root.append(style);
    const template = document.createElement('template');
    template.innerHTML = TEMPLATE;
    root.append(template.content.cloneNode(true));
    const q = <T extends Element>(selector: string) => root.querySelector(selector) as T;
    this.ui = {
      list: q('.threads ul'), log: q('.log'), status: q('.status'), title: q('.title'), alert: q('.alert'),
      input: q('textarea'), send: q('.primary'), stop: q('.secondary'), form: q('form'), newButton: q('.new'),
    };
    this.ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.ui.input.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter is a new line; not while an IME composes a character.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.ui.stop.addEventListener('click', () => this.stopRun());
    this.ui.newButton.addEventListener('click', () => this.select(undefined, true));
    this.log = new LogView(this.ui.log, () => void this.loadOlder());
  }

  // ---- configuration: attributes and properties ------------------------------------------------

  get server(): string { return this.getAttribute('server') ?? location.origin; }
  set server(value: string) { this.setAttribute('server', value); }
  get tokenEndpoint(): string | null { return this.getAttribute('token-endpoint'); }
  set tokenEndpoint(value: string | null) { this.toggleAttr('token-endpoint', value); }
  get agent(): string | null { return this.getAttribute('agent'); }
  set agent(value: string | null) { this.toggleAttr('agent', value); }
  get thread(): string | null { return this.getAttribute('thread'); }
  set thread(value: string | null) { this.toggleAttr('thread', value); }
  /**
   * A function returning a JWT (or a promise of one); takes precedence over token-endpoint. The
   * client asks for each token through the element, so setting a new function (React passes a new
   * inline one on every render) takes effect at the next token request, without a reconnect.
   */
  get token(): TokenCallback | undefined { return this.tokenCallback; }
  set token(value: TokenCallback | undefined) {
    this.tokenCallback = value;
    if (this.isConnected && !this.chat) this.restart();
  }
  /** The client behind the element, for hosts that want its state or events. */
  get client(): ConversationClient | undefined { return this.chat; }

  connectedCallback(): void {
    // A property set before this element was defined (React does that) sits on the instance.
    for (const name of ['token', 'server', 'tokenEndpoint', 'agent', 'thread'] as const) {
      if (Object.hasOwn(this, name)) {
        const value = (this as Record<string, unknown>)[name];
        delete (this as Record<string, unknown>)[name];
        (this as Record<string, unknown>)[name] = value;
      }
    }
    if (!this.chat) this.restart();
  }

  disconnectedCallback(): void {
    this.chat?.close();
    this.chat = undefined;
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value || !this.isConnected) return;
    if (name === 'thread') this.select(value ?? undefined, false);
    else if (name === 'heading') this.schedule();
    else if (name !== 'agent') this.restart();
  }

  /** Events per history page (`history-page`, 1 to 500). @defaultValue 50 */
  private get pageSize(): number {
    const value = Number(this.getAttribute('history-page'));
    return Number.isInteger(value) && value >= 1 && value <= 500 ? value : 50;
  }

  private toggleAttr(name: string, value: string | null): void {
    if (value === null || value === undefined) this.removeAttribute(name);
    else this.setAttribute(name, value);
  }

  // ---- the client ---------------------------------------------------------------------------------

  /** Where the next token comes from: the token property, else the token-endpoint attribute. */
  private tokenSource(): TokenCallback | undefined {
    const endpoint = this.tokenEndpoint;
    return this.tokenCallback ?? (endpoint ? endpointTokenSource(endpoint, this.getAttribute('token-method')?.toUpperCase() === 'GET' ? 'GET' : 'POST') : undefined);
  }

  private restart(): void {
    this.chat?.close();
    this.chat = undefined;
    this.opening.clear();
    this.failedSend = undefined;
    this.log.clear();
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
    const chat = new ConversationClient({ url: this.server, token });
    this.chat = chat;
    chat.on('status', (status, detail) => {
      this.showStatus(status, detail);
      if (status === 'open') this.showError(undefined);
    });
    chat.on('ready', (session) => {
      this.fire('convo-ready', { session });
      void this.refreshThreads();
      const wanted = this.current ?? this.thread ?? undefined;
      if (wanted && !chat.thread(wanted)?.following) void this.open(wanted);
    });
    chat.on('thread', (state) => {
      if (state.threadId === this.current) this.schedule();
    });
    chat.on('event', (event) => {
      if (event.type !== 'agent_completed') return;
      const { thread_id, message, status } = (event as ThreadEvent<'agent_completed'>).payload;
      this.fire('convo-message', { threadId: thread_id, message, status });
      // A thread left while it streamed is let go now that its run is over.
      this.release(thread_id);
    });
    chat.on('outbox', () => this.schedule());
    chat.on('threadDeleted', (threadId) => {
      this.threadList = this.threadList.filter((t) => t.id !== threadId);
      if (threadId === this.current) this.select(undefined, true);
      this.schedule();
    });
    chat.on('refused', (refusal) => this.fail(new ConversationError(refusal.code, refusal.message)));
    chat.on('error', (error) => this.fail(error));
    const initial = this.thread;
    this.current = initial ?? undefined;
    this.schedule();
  }

  private async refreshThreads(): Promise<void> {
    try {
      this.threadList = (await this.chat!.listThreads({ limit: 50 })).threads;
      this.schedule();
    } catch (error) {
      this.fail(error);
    }
  }

  /**
   * Shows a thread: its newest page of history, then its live events. The reader may move on while
   * either is under way: after each step the thread must still be the one shown, or it is not
   * followed (or let go again).
   */
  private async open(threadId: string): Promise<void> {
    const chat = this.chat;
    if (!chat || this.opening.has(threadId) || chat.thread(threadId)?.following) return;
    this.opening.add(threadId);
    const shown = () => this.chat === chat && this.current === threadId;
    try {
      await this.log.busy(() => chat.history(threadId, { limit: this.pageSize }));
      if (!shown()) return;
      await chat.follow(threadId);
      if (!shown()) this.release(threadId);
    } catch (error) {
      if (shown()) this.fail(error);
    } finally {
      this.opening.delete(threadId);
      this.schedule();
    }
  }

  /**
   * A connection may follow only so many threads (MAX_SUBSCRIPTIONS_PER_CONNECTION): a thread no
   * longer shown is let go, unless a run still streams on it (then at its agent_completed). Its
   * state stays with the client for a return (the client keeps a few).
   */
  private release(threadId: string): void {
    const chat = this.chat;
    const state = chat?.thread(threadId);
    if (!chat || !state?.following || state.activeRunId || threadId === this.current) return;
    chat.unfollow(threadId).catch(() => {});
  }

  private select(threadId: string | undefined, announce: boolean): void {
    if (threadId === this.current) return;
    const left = this.current;
    this.current = threadId;
    if (left) this.release(left);
    this.log.clear();
    this.showError(undefined);
    if (threadId) void this.open(threadId);
    if (announce) this.fire('convo-thread-change', { threadId: threadId ?? null });
    this.schedule();
    if (!threadId) this.ui.input.focus();
  }

  private submit(): void {
    const content = this.ui.input.value.trim();
    const chat = this.chat;
    if (!content || !chat) return;
    this.ui.input.value = '';
    const threadId = this.current;
    // The text of a send that failed, sent again unchanged, keeps its client_message_id: if the
    // first one was stored after all (a timeout, its answer lost), the server answers with that
    // message instead of storing a second one.
    const failed = this.failedSend;
    const clientMessageId = failed && failed.content === content && failed.threadId === threadId ? failed.clientMessageId : newClientMessageId();
    this.failedSend = undefined;
    chat.send(content, { threadId, agentId: this.agent ?? undefined, clientMessageId }).then(
      (ack) => {
        this.showError(undefined);
        if (threadId === undefined && this.current === undefined) {
          this.current = ack.thread_id;
          this.fire('convo-thread-change', { threadId: ack.thread_id });
          void this.refreshThreads();
        }
        this.schedule();
      },
      (error: unknown) => {
        // Nothing typed is lost: the text goes back into the box when it is empty.
        if (!this.ui.input.value) this.ui.input.value = content;
        if (this.chat === chat) this.failedSend = { content, threadId, clientMessageId };
        this.fail(error);
      },
    );
  }

  private stopRun(): void {
    const runId = this.current ? this.chat?.thread(this.current)?.activeRunId : undefined;
    if (runId) this.chat!.cancel(runId).catch((error: unknown) => this.fail(error));
  }

  private async loadOlder(): Promise<void> {
    const state = this.current ? this.chat?.thread(this.current) : undefined;
    if (!state || !state.hasOlder || this.loadingOlder) return;
    this.loadingOlder = true;
    try {
      const chat = this.chat!;
      await this.log.busy(() => this.log.keepingPosition(async () => {
        await chat.history(state.threadId, { limit: this.pageSize });
        // The reader may have moved to another conversation meanwhile: its log stays as it is.
        if (this.chat !== chat || this.current !== state.threadId) return false;
        this.paint();
        return true;
      }));
    } catch (error) {
      if (this.current === state.threadId) this.fail(error);
    } finally {
      this.loadingOlder = false;
      this.schedule();
    }
  }

  // ---- rendering --------------------------------------------------------------------------------

  private schedule(): void {
    if (this.frame) return;
    const run = () => {
      this.frame = 0;
      this.paint();
    };
    this.frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(run) : (setTimeout(run, 16) as unknown as number);
  }

  private paint(): void {
    const chat = this.chat;
    const state = this.current ? chat?.thread(this.current) : undefined;
    const info = this.threadList.find((t) => t.id === this.current);
    this.ui.title.textContent = this.getAttribute('heading') ?? (this.current ? info?.title ?? 'Conversation' : 'New conversation');
    this.paintThreads();
    this.log.paint(state, chat?.outbox ?? [], this.current);
    this.ui.stop.hidden = !state?.activeRunId;
  }

  private paintThreads(): void {
    if (this.shownThreads?.list === this.threadList && this.shownThreads.current === this.current) return;
    this.shownThreads = { list: this.threadList, current: this.current };
    const list = this.ui.list;
    list.replaceChildren(
      ...this.threadList.map((thread) => {
        const item = el('li');
        const button = el('button', '', thread.title || `Conversation ${thread.id.slice(-6)}`);
        button.type = 'button';
        button.setAttribute('aria-current', String(thread.id === this.current));
        button.addEventListener('click', () => this.select(thread.id, true));
        item.append(button);
        return item;
      }),
    );
  }

  private showStatus(status: ConnectionStatus, detail: StatusDetail): void {
    this.ui.status.dataset.state = status;
    this.ui.status.textContent = statusText(status, detail);
    this.fire('convo-status', { status, detail });
  }

  private showError(text: string | undefined): void {
    this.ui.alert.hidden = !text;
    this.ui.alert.textContent = text ?? '';
  }

  private fail(error: unknown): void {
    const e = error instanceof ConversationError ? error : new ConversationError('internal_error', String((error as Error)?.message ?? error));
    this.showError(explain(e.code, e.message, e.retryAfterMs));
    this.fire('convo-error', { code: e.code, message: e.message });
  }

  private fire(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}
