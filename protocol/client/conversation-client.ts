/**
 * `ConversationClient`: protocol v1 over one socket that is kept open (link.ts). It keeps a state
 * per thread and resumes every followed thread from the last seq it applied after a reconnect,
 * answers `auth.expiring` with a fresh token, and turns requests into promises that wait in a
 * queue while offline. It has no dependencies, so it runs in browsers and in Node (pass `ws`).
 */
import type { ClientFrameType, ClientPayloads, ErrorPayload, MessageSendResult, SessionReadyPayload, ThreadEvent, ThreadSubscribeResult } from '../frames.js';
import type {
  CancelResult, HistoryResult, RefreshResult, SearchResult, ThreadDeletedResult, ThreadListResult, ThreadView, UnsubscribeResult,
} from '../results.js';
import { CloseCodes } from '../codes.js';
import { Emitter } from './emitter.js';
import { ConversationError } from './errors.js';
import { Link, type InboundFrame } from './link.js';
import { RequestBook, type PendingRequest } from './requests.js';
import { applyEvent, emptyThread, prependEvents, type ThreadState } from './thread-state.js';
import type { ClientEvents, ConnectionStatus, ConversationClientOptions, OutboxEntry, SendOptions } from './types.js';

export { socketUrl } from './link.js';

/** The server's MAX_FRAME_BYTES unless told otherwise. */
const DEFAULT_MAX_FRAME_BYTES = 65_536;

/** Requests that may be written again after a drop without changing their effect. */
const RESENDABLE: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  'message.send', 'thread.subscribe', 'thread.unsubscribe', 'run.cancel', 'ping',
  'thread.list', 'thread.get', 'thread.history', 'search', 'thread.update',
]);

export class ConversationClient extends Emitter<ClientEvents> {
  private readonly threadStates = new Map<string, ThreadState>();
  private readonly book = new RequestBook();
  private readonly link: Link;
  private session?: SessionReadyPayload;
  /** The largest frame the server reads, as far as this client knows (lowered by a 1009 close). */
  private frameLimit: number;
  /** Requests on the wire at once: opens up to maxInFlight again after a rate_limited halved it. */
  private window: number;
  /** A rate_limited refusal holds the whole queue until then (the limit is the connection's). */
  private pausedUntil = 0;
  private pauseTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly options: ConversationClientOptions) {
    super();
    this.frameLimit = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.window = this.maxInFlight;
    this.link = new Link(options, {
      ready: (session) => this.onReady(session),
      frame: (frame) => this.onFrame(frame),
      lost: (end) => {
        if (end?.code === CloseCodes.too_large) this.refuseTooLarge(end.reason);
        this.book.disconnected();
        this.emit('outbox', this.outbox);
      },
      status: (status, detail) => this.emit('status', status, detail),
      refused: (refusal) => {
        this.book.rejectAll(new ConversationError('client_closed', `The client stopped: ${refusal.message}`));
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
    return [...this.threadStates.values()];
  }

  thread(threadId: string): ThreadState | undefined {
    return this.threadStates.get(threadId);
  }

  /** Sends waiting for their ack, oldest first. */
  get outbox(): OutboxEntry[] {
    return this.book.all().filter((r) => r.type === 'message.send').map((r) => {
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
    clearTimeout(this.pauseTimer);
    this.link.close();
    this.book.rejectAll(new ConversationError('client_closed', 'The client was closed.'));
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
        this.stateOf(ack.thread_id).following = true;
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
    let state = this.threadStates.get(threadId);
    if (!state || (options.afterSeq !== undefined && options.afterSeq < state.lastSeq)) {
      this.threadStates.set(threadId, (state = emptyThread(threadId, options.afterSeq ?? 0)));
    }
    state.following = true;
    this.touch(threadId);
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
    this.prune();
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
    const state = this.stateOf(threadId);
    prependEvents(state, result.events as unknown as ThreadEvent[], result.has_more);
    this.touch(threadId);
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
    const { request, promise } = this.book.add({
      type,
      payload: typeof payload === 'function' ? payload : () => payload,
      resend: RESENDABLE.has(type),
      urgent: options.urgent ?? false,
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs ?? 15_000,
    });
    // Too large for the server: refused now, offline too, instead of a 1009 close later.
    if (!this.fits(request)) return promise as Promise<R>;
    this.pump();
    return promise as Promise<R>;
  }

  // ---- frames ----------------------------------------------------------------------------------

  private onReady(session: SessionReadyPayload): void {
    this.session = session;
    this.window = this.maxInFlight;
    const queued = new Set(this.book.unsent().filter((r) => r.type === 'thread.subscribe').map((r) => (r.payload() as { thread_id: string }).thread_id));
    for (const state of this.threadStates.values()) {
      if (state.following && !queued.has(state.threadId)) {
        // A thread that cannot be resumed is told (not_found has already dropped it: threadDeleted).
        void this.subscribe(state.threadId, true).catch((error: unknown) => {
          if (error instanceof ConversationError && (error.code === 'not_found' || error.code === 'client_closed')) return;
          this.emit('error', error instanceof ConversationError ? error : new ConversationError('internal_error', String(error)));
        });
      }
    }
    this.pump();
    this.emit('outbox', this.outbox);
    this.emit('ready', session);
  }

  private onFrame(frame: InboundFrame): void {
    const payload = frame.payload ?? {};
    switch (frame.type) {
      case 'ack':
      case 'pong':
        if (frame.id && this.book.settle(frame.id, undefined, payload)) this.answered();
        return;
      case 'error': {
        const error = payload as unknown as ErrorPayload;
        const failure = new ConversationError(error.code, error.message, error.retryable, error.retry_after_ms, error.last_seq);
        const request = frame.id ? this.book.get(frame.id) : undefined;
        if (!request || request.state !== 'sent') {
          this.emit('error', failure);
        } else if (!this.retryLater(request, failure)) {
          this.book.settle(request.id, failure);
          this.answered();
        }
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
    const state = this.stateOf(event.payload.thread_id);
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

  // ---- the queue ---------------------------------------------------------------------------------

  private get maxInFlight(): number {
    return Math.max(1, this.options.maxInFlight ?? 16);
  }

  /** Writes queued requests, in order, while a session is open and the window has room. */
  private pump(): void {
    if (this.link.status !== 'open' || Date.now() < this.pausedUntil) return;
    while (this.book.inFlight < this.window) {
      const request = this.book.next();
      if (!request) return;
      const text = frameText(request);
      const bytes = utf8Length(text);
      if (bytes > this.frameLimit) {
        this.rejectTooLarge(request, bytes);
        continue;
      }
      if (!this.link.send(text)) return;
      this.book.sent(request, bytes, (late) => {
        this.book.settle(late.id, new ConversationError('request_timeout', `No answer to ${late.type} within ${late.timeoutMs} ms.`, true));
        this.emit('outbox', this.outbox);
        this.pump();
      });
    }
  }

  /** An answer came: the window opens by one (back up to maxInFlight) and the queue moves on. */
  private answered(): void {
    this.window = Math.min(this.maxInFlight, this.window + 1);
    this.pump();
  }

  /**
   * A refusal worth waiting out: `rate_limited` (the server did not act on the frame) or, for a
   * request safe to repeat, `unavailable`, with a wait the caller can live with. The whole queue
   * waits for a rate limit (it is the connection's or the user's), and the window shrinks to one,
   * so the retries do not trip the limit again.
   */
  private retryLater(request: PendingRequest, failure: ConversationError): boolean {
    const transient = failure.code === 'rate_limited' || (failure.code === 'unavailable' && request.resend);
    const delayMs = failure.retryAfterMs ?? 250 * 2 ** request.retries;
    if (!transient || request.retries >= (this.options.retries ?? 5) || delayMs > (this.options.maxRetryDelayMs ?? 5_000)) return false;
    this.book.hold(request, delayMs, () => this.pump());
    if (failure.code === 'rate_limited') {
      this.window = 1;
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delayMs);
      clearTimeout(this.pauseTimer);
      this.pauseTimer = setTimeout(() => {
        this.pausedUntil = 0;
        this.pump();
      }, this.pausedUntil - Date.now());
    }
    this.pump();
    return true;
  }

  /** Rejects at once a request whose frame is over the limit (it would close the socket with 1009). */
  private fits(request: PendingRequest): boolean {
    const bytes = utf8Length(frameText(request));
    if (bytes <= this.frameLimit) return true;
    this.rejectTooLarge(request, bytes);
    return false;
  }

  private rejectTooLarge(request: PendingRequest, bytes: number): void {
    this.book.settle(request.id, new ConversationError('too_large', `The ${request.type} frame is ${bytes} bytes of UTF-8; the server reads at most ${this.frameLimit}.`));
  }

  /**
   * The server closed with 1009: a frame on the wire was over its limit, which the reason names
   * (`frame over N bytes`). Requests over it are rejected instead of being resent after the
   * reconnect (which would close the socket again, forever); without a readable limit, the largest
   * request on the wire is taken to be the one.
   */
  private refuseTooLarge(reason: string): void {
    const onWire = this.book.all().filter((r) => r.state === 'sent');
    const limit = Number(/over (\d+) bytes/.exec(reason)?.[1]);
    if (Number.isInteger(limit) && limit > 0) {
      this.frameLimit = Math.min(this.frameLimit, limit);
      // Every request over the limit now known, waiting or on the wire.
      const over = this.book.all().filter((r) => !this.fits(r));
      if (over.some((r) => r.state === 'sent')) return;
    }
    const largest = onWire.sort((a, b) => b.bytes - a.bytes)[0];
    if (largest && this.book.get(largest.id)) this.rejectTooLarge(largest, largest.bytes);
  }

  // ---- thread states -----------------------------------------------------------------------------

  private stateOf(threadId: string, afterSeq = 0): ThreadState {
    let state = this.threadStates.get(threadId);
    if (!state) {
      this.threadStates.set(threadId, (state = emptyThread(threadId, afterSeq)));
      this.prune();
    }
    return state;
  }

  /** Marks a thread most recently used (a Map iterates in insertion order: oldest first). */
  private touch(threadId: string): void {
    const state = this.threadStates.get(threadId);
    if (!state) return;
    this.threadStates.delete(threadId);
    this.threadStates.set(threadId, state);
  }

  /** Drops the least recently used states of threads not followed, past `keepThreads`. */
  private prune(): void {
    const keep = this.options.keepThreads ?? 10;
    let unfollowed = 0;
    for (const state of this.threadStates.values()) if (!state.following) unfollowed += 1;
    for (const [threadId, state] of this.threadStates) {
      if (unfollowed <= keep) return;
      if (state.following) continue;
      this.threadStates.delete(threadId);
      unfollowed -= 1;
    }
  }

  private dropThread(threadId: string): void {
    if (!this.threadStates.delete(threadId)) return;
    this.emit('threadDeleted', threadId);
  }
}

function frameText(request: PendingRequest): string {
  return JSON.stringify({ type: request.type, id: request.id, payload: request.payload() });
}

/** UTF-8 size of a string, counted without encoding it (a surrogate pair counts 2 + 1 + 1). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) bytes += unit >= 0x800 && (unit < 0xd800 || unit > 0xdfff) ? 2 : 1;
  }
  return bytes;
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
