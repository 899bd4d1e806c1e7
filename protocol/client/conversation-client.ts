/**
 * `ConversationClient`: protocol v1 over one socket that is kept open (link.ts). It keeps a state
 * per thread (thread-state.ts, held in thread-store.ts) and resumes every followed thread from the
 * last seq it applied after a reconnect, answers `auth.expiring` with a fresh token, and turns
 * requests into promises that wait in a queue while offline (request-queue.ts: their order, their
 * pace and their size). It has no dependencies, so it runs in browsers and in Node (pass `ws`).
 */
import type { ClientFrameType, ClientPayloads, ErrorPayload, MessageSendResult, SessionReadyPayload, ThreadEvent, ThreadSubscribeResult } from '../frames.js';
import type {
  CancelResult, HistoryResult, RefreshResult, SearchResult, ThreadDeletedResult, ThreadListResult, ThreadView, UnsubscribeResult,
} from '../results.js';
import { CloseCodes } from '../codes.js';
import { Emitter } from './emitter.js';
import { ConversationError } from './errors.js';
import { Link, type InboundFrame } from './link.js';
import { RequestQueue } from './request-queue.js';
import { applyEvent, emptyThread, prependEvents, type ThreadState } from './thread-state.js';
import { ThreadStore } from './thread-store.js';
import type { ClientEvents, ConnectionStatus, ConversationClientOptions, OutboxEntry, SendOptions } from './types.js';

export { socketUrl } from './handshake.js';

export class ConversationClient extends Emitter<ClientEvents> {
  private readonly threadStates: ThreadStore;
  private readonly queue: RequestQueue;
  private readonly link: Link;
  private session?: SessionReadyPayload;

  constructor(private readonly options: ConversationClientOptions) {
    super();
    this.threadStates = new ThreadStore(options.keepThreads ?? 10);
    this.queue = new RequestQueue(options, {
      write: (text) => this.link.send(text),
      open: () => this.link.status === 'open',
      timedOut: () => this.emit('outbox', this.outbox),
    });
    this.link = new Link(options, {
      ready: (session) => this.onReady(session),
      frame: (frame) => this.onFrame(frame),
      lost: (end) => {
        this.queue.lost(end?.code === CloseCodes.too_large ? end : undefined);
        this.emit('outbox', this.outbox);
      },
      status: (status, detail) => this.emit('status', status, detail),
      refused: (refusal) => {
        this.queue.rejectAll(new ConversationError('client_closed', `The client stopped: ${refusal.message}`));
        this.emit('outbox', this.outbox);
        this.emit('refused', refusal);
      },
      error: (error) => this.emit('error', error),
    });
    // In a microtask, so that listeners added right after the constructor hear every event, even
    // a refusal that comes at once (a token provider that throws synchronously).
    if (options.autoConnect ?? true) queueMicrotask(() => this.link.status === 'idle' && this.connect());
  }

  get status(): ConnectionStatus {
    return this.link.status;
  }

  /** The current session (`session.ready`), while open. */
  get sessionInfo(): SessionReadyPayload | undefined {
    return this.link.status === 'open' ? this.session : undefined;
  }

  /** Every thread this client holds state for. */
  get threads(): ThreadState[] {
    return this.threadStates.all();
  }

  thread(threadId: string): ThreadState | undefined {
    return this.threadStates.get(threadId);
  }

  /** Sends waiting for their ack, oldest first. */
  get outbox(): OutboxEntry[] {
    return this.queue.book.all().filter((r) => r.type === 'message.send').map((r) => {
      const p = r.payload() as ClientPayloads['message.send'];
      return { clientMessageId: p.client_message_id!, threadId: p.thread_id, content: p.content, state: r.state === 'sent' ? 'sent' : 'queued' };
    });
  }

  /** Starts (or restarts, after `stopped`) connecting. */
  connect(): void {
    this.link.start();
  }

  /** Closes the socket for good; pending requests reject with `client_closed`. */
  close(): void {
    this.link.close();
    this.queue.rejectAll(new ConversationError('client_closed', 'The client was closed.'));
    this.emit('outbox', this.outbox);
  }

  // ---- requests --------------------------------------------------------------------------------

  /** Sends a message; resolves with the ack once the server stored it. Queued while offline. */
  send(content: string, options: SendOptions = {}): Promise<MessageSendResult> {
    const payload: ClientPayloads['message.send'] = {
      content,
      client_message_id: options.clientMessageId ?? newClientMessageId(),
      ...(options.threadId ? { thread_id: options.threadId } : {}),
      ...(options.agentId ? { agent_id: options.agentId } : {}),
      ...(options.onBusy ? { on_busy: options.onBusy } : {}),
    };
    const result = this.request<MessageSendResult>('message.send', payload);
    this.emit('outbox', this.outbox);
    return result.then(
      (ack) => {
        // The server follows the thread for this socket from the message on; so do we.
        this.threadStates.ensure(ack.thread_id).following = true;
        this.emit('outbox', this.outbox);
        return ack;
      },
      (error: unknown) => {
        this.emit('outbox', this.outbox);
        throw error;
      },
    );
  }

  /** Asks the worker to stop the run; it ends with `agent_completed` status `cancelled`. */
  cancel(runId: string): Promise<CancelResult> {
    return this.request('run.cancel', { run_id: runId });
  }

  /**
   * Follows a thread: its events from `afterSeq` (default: the newest seq held, 0 for a thread not
   * held) and then live, resumed after every reconnect.
   */
  follow(threadId: string, options: { afterSeq?: number } = {}): Promise<ThreadSubscribeResult> {
    const held = this.threadStates.get(threadId);
    const state = !held || (options.afterSeq !== undefined && options.afterSeq < held.lastSeq) ? emptyThread(threadId, options.afterSeq ?? 0) : held;
    state.following = true;
    this.threadStates.set(threadId, state);
    return this.subscribe(threadId, false);
  }

  /**
   * Stops following. The state is kept for a return (pass `forget` to drop it now); only the
   * `keepThreads` most recently used states of threads not followed are kept.
   */
  unfollow(threadId: string, options: { forget?: boolean } = {}): Promise<UnsubscribeResult> {
    const state = this.threadStates.get(threadId);
    if (state) state.following = false;
    if (options.forget) this.threadStates.delete(threadId);
    this.threadStates.prune();
    return this.request('thread.unsubscribe', { thread_id: threadId });
  }

  /**
   * A page of stored events before `beforeSeq` (default: the oldest held, or the newest events),
   * folded into the thread's state.
   */
  async history(threadId: string, options: { beforeSeq?: number; limit?: number } = {}): Promise<HistoryResult> {
    const held = this.threadStates.get(threadId);
    const beforeSeq = options.beforeSeq ?? (held && held.firstSeq > 0 ? held.firstSeq : undefined);
    const result = await this.request<HistoryResult>('thread.history', {
      thread_id: threadId,
      ...(beforeSeq !== undefined ? { before_seq: beforeSeq } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    });
    const state = this.threadStates.ensure(threadId);
    prependEvents(state, result.events, result.has_more);
    this.threadStates.touch(threadId);
    this.emit('thread', state);
    return result;
  }

  listThreads(options: { cursor?: string; limit?: number; archived?: boolean } = {}): Promise<ThreadListResult> {
    return this.request('thread.list', options);
  }

  createThread(options: { title?: string; agentId?: string } = {}): Promise<ThreadView> {
    return this.request('thread.create', {
      ...(options.title !== undefined ? { title: options.title } : {}),
      ...(options.agentId !== undefined ? { agent_id: options.agentId } : {}),
    });
  }

  getThread(threadId: string): Promise<ThreadView> {
    return this.request('thread.get', { thread_id: threadId });
  }

  updateThread(threadId: string, changes: { title?: string; archived?: boolean }): Promise<ThreadView> {
    return this.request('thread.update', { thread_id: threadId, ...changes });
  }

  async deleteThread(threadId: string): Promise<ThreadDeletedResult> {
    const result = await this.request<ThreadDeletedResult>('thread.delete', { thread_id: threadId });
    this.dropThread(threadId);
    return result;
  }

  search(q: string, options: { limit?: number } = {}): Promise<SearchResult> {
    return this.request('search', { q, ...options });
  }

  /**
   * Any request frame, answered by its ack payload (or rejected with a ConversationError).
   * `timeoutMs` counts from when the frame is written.
   */
  request<R>(type: ClientFrameType, payload: ClientPayloads[ClientFrameType] | (() => ClientPayloads[ClientFrameType]), options: { timeoutMs?: number; urgent?: boolean } = {}): Promise<R> {
    if (this.link.finished) {
      return Promise.reject(new ConversationError('client_closed', `The client is ${this.link.status}; call connect() first.`));
    }
    return this.queue.add(type, typeof payload === 'function' ? payload : () => payload, options) as Promise<R>;
  }

  // ---- frames ----------------------------------------------------------------------------------

  private onReady(session: SessionReadyPayload): void {
    this.session = session;
    const queued = new Set(this.queue.book.unsent().filter((r) => r.type === 'thread.subscribe').map((r) => (r.payload() as { thread_id: string }).thread_id));
    for (const state of this.threadStates.all()) {
      if (state.following && !queued.has(state.threadId)) {
        // A thread that cannot be resumed is told (not_found has already dropped it: threadDeleted).
        void this.subscribe(state.threadId, true).catch((error: unknown) => {
          if (error instanceof ConversationError && (error.code === 'not_found' || error.code === 'client_closed')) return;
          this.emit('error', error instanceof ConversationError ? error : new ConversationError('internal_error', String(error)));
        });
      }
    }
    this.queue.opened();
    this.emit('outbox', this.outbox);
    this.emit('ready', session);
  }

  private onFrame(frame: InboundFrame): void {
    const payload = frame.payload ?? {};
    switch (frame.type) {
      case 'ack':
      case 'pong':
        if (frame.id) this.queue.answer(frame.id, payload);
        return;
      case 'error': {
        const error = payload as unknown as ErrorPayload;
        const failure = new ConversationError(error.code, error.message, error.retryable, error.retry_after_ms, error.last_seq);
        if (!frame.id || !this.queue.refuse(frame.id, failure)) this.emit('error', failure);
        return;
      }
      case 'auth.expiring':
        void this.refreshToken();
        return;
      case 'thread_deleted':
        this.dropThread(String(payload.thread_id));
        return;
      default:
        if (typeof payload.seq === 'number' && typeof payload.thread_id === 'string') this.onEvent(frame as unknown as ThreadEvent);
    }
  }

  private onEvent(event: ThreadEvent): void {
    const state = this.threadStates.ensure(event.payload.thread_id);
    if (!applyEvent(state, event)) return;
    this.emit('event', event);
    this.emit('thread', state);
  }

  /** thread.subscribe from the newest seq held when the frame is written; out of range: start over. */
  private subscribe(threadId: string, urgent: boolean): Promise<ThreadSubscribeResult> {
    const payload = () => ({ thread_id: threadId, after_seq: this.threadStates.get(threadId)?.lastSeq ?? 0 });
    return this.request<ThreadSubscribeResult>('thread.subscribe', payload, { urgent }).catch((error: unknown) => {
      if (error instanceof ConversationError && error.code === 'seq_out_of_range') {
        // This client is ahead of the server (a restored database): what it holds is not the log.
        const state = emptyThread(threadId);
        state.following = true;
        this.threadStates.set(threadId, state);
        this.emit('thread', state);
        return this.request<ThreadSubscribeResult>('thread.subscribe', { thread_id: threadId, after_seq: 0 }, { urgent });
      }
      if (error instanceof ConversationError && error.code === 'not_found') this.dropThread(threadId);
      throw error;
    });
  }

  private async refreshToken(): Promise<void> {
    try {
      const token = await this.options.token();
      const ack = await this.request<RefreshResult>('auth.refresh', { token }, { urgent: true });
      this.emit('tokenRefreshed', ack.token_expires_at);
    } catch (error) {
      // The socket closes at the token's exp (4001) and the next connect asks for a token again.
      // A socket that dropped meanwhile needs no refresh: its successor gets a fresh token.
      if (error instanceof ConversationError && (error.code === 'connection_lost' || error.code === 'client_closed')) return;
      this.emit('error', error instanceof ConversationError ? error : new ConversationError('token_unavailable', `Could not refresh the token: ${(error as Error)?.message ?? error}`, true));
    }
  }

  private dropThread(threadId: string): void {
    if (!this.threadStates.delete(threadId)) return;
    this.emit('threadDeleted', threadId);
  }
}

/**
 * A client_message_id: random, and also available outside secure contexts (no randomUUID there).
 * Pass one to `send` (and again to resend the same message) to make a retry safe.
 */
export function newClientMessageId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
