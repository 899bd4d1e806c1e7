/**
 * `ConversationClient`: one WebSocket to the gateway, kept open. It authenticates with a token from
 * the caller's provider on every connect, reconnects with backoff after a drop and resumes every
 * followed thread from the last seq it applied, keeps a state per thread, and turns requests into
 * promises. It has no dependencies, so it runs in browsers and in Node (pass `ws` as WebSocket).
 */
import { PROTOCOL } from '../codes.js';
import type {
  BusyPolicy, ClientFrameType, ClientPayloads, ErrorPayload, MessageSendResult, SessionReadyPayload, ThreadEvent,
  ThreadSubscribeResult,
} from '../frames.js';
import type {
  CancelResult, HistoryResult, RefreshResult, SearchResult, ThreadDeletedResult, ThreadListResult, ThreadView, UnsubscribeResult,
} from '../results.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ConversationError } from './errors.js';
import { judge, type SocketEnd } from './refusals.js';
import { RequestBook, type PendingRequest } from './requests.js';
import { openSocket, type HttpRefusal, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import { applyEvent, emptyThread, prependEvents, type ThreadState } from './thread-state.js';

/** Returns a JWT for the current user; called before every connect and whenever the token nears expiry. */
export type TokenProvider = () => string | Promise<string>;

export interface ConversationClientOptions {
  /** The socket URL, e.g. `wss://chat.example.com/v1/ws` (an http(s) base URL is accepted too). */
  url: string;
  token: TokenProvider;
  /** The WebSocket implementation. @defaultValue globalThis.WebSocket (in Node 20: pass `ws`) */
  WebSocket?: WebSocketConstructor;
  /**
   * How the token travels: as the `bearer.<jwt>` subprotocol, or as a one-use `?ticket=` from
   * `POST /v1/ws-ticket` (keeps the JWT out of the handshake). @defaultValue 'subprotocol'
   */
  transport?: 'subprotocol' | 'ticket';
  /** How long a request may wait for its answer once sent. @defaultValue 15000 */
  requestTimeoutMs?: number;
  /** How long the handshake may take, up to `session.ready`. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /** Silence after which the client pings; no answer within min(10 s, max(1 s, heartbeatMs)) drops the socket. 0: off. @defaultValue 25000 */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Connect in the constructor. @defaultValue true */
  autoConnect?: boolean;
}

export type ConnectionStatus =
  /** Not started (autoConnect: false). */
  | 'idle'
  | 'connecting'
  /** `session.ready` arrived: requests flow. */
  | 'open'
  /** Dropped; waiting `delayMs` before the next attempt. */
  | 'reconnecting'
  /** Refused in a way a new connection cannot fix (see the `refused` event). `connect()` starts again. */
  | 'stopped'
  /** `close()` was called. */
  | 'closed';

export interface StatusDetail {
  /** Reconnect attempts since the last session that held. */
  attempt: number;
  /** `reconnecting`: how long until the next attempt. */
  delayMs?: number;
  /** Why the last socket ended, where known (an error code). */
  code?: string;
  message?: string;
  closeCode?: number;
}

/** Why the client stopped reconnecting. */
export interface Refusal { code: string; message: string; closeCode?: number; httpStatus?: number }

export interface OutboxEntry {
  clientMessageId: string;
  threadId?: string;
  content: string;
  /** `queued`: waiting for a connection; `sent`: on the wire, waiting for its ack. */
  state: 'queued' | 'sent';
}

export interface ClientEvents extends Record<string, unknown[]> {
  status: [ConnectionStatus, StatusDetail];
  ready: [SessionReadyPayload];
  /** A thread event applied to its thread (duplicates are dropped before this). */
  event: [ThreadEvent];
  /** A thread's state changed. */
  thread: [ThreadState];
  /** A followed thread was deleted (here or elsewhere); its state is gone. */
  threadDeleted: [string];
  refused: [Refusal];
  tokenRefreshed: [string];
  outbox: [OutboxEntry[]];
  /** A problem not tied to a request: the token provider failed, a refresh was refused. */
  error: [ConversationError];
}

export interface SendOptions {
  threadId?: string;
  agentId?: string;
  onBusy?: BusyPolicy;
  /** The idempotency key; generated when absent. Reuse it to retry a send safely. */
  clientMessageId?: string;
}

/** Requests that may be written again after a drop without changing their effect. */
const RESENDABLE: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  'message.send', 'thread.subscribe', 'thread.unsubscribe', 'run.cancel', 'ping',
  'thread.list', 'thread.get', 'thread.history', 'search', 'thread.update',
]);

type Handshake = { url: string; protocols: string[] } | { refused: HttpRefusal };

interface Attempt {
  socket: WebSocketLike;
  ready: boolean;
  http?: HttpRefusal;
  /** An `error` frame before session.ready: the refusal that the close will confirm. */
  refusal?: ErrorPayload;
  timer?: ReturnType<typeof setTimeout>;
  openedAt: number;
}

export class ConversationClient extends Emitter<ClientEvents> {
  private readonly threadStates = new Map<string, ThreadState>();
  private readonly book = new RequestBook();
  private readonly backoff: Backoff;
  private readonly Impl: WebSocketConstructor | undefined;
  private attempt?: Attempt;
  private statusValue: ConnectionStatus = 'idle';
  private session?: SessionReadyPayload;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private heartbeatTimer?: ReturnType<typeof setInterval>;
  private lastInbound = 0;
  /** Refresh verdicts in a row without a session: a second one means the new token fails too. */
  private refreshes = 0;
  private readonly onOnline = () => {
    if (this.statusValue === 'reconnecting') this.connectNow();
  };

  constructor(private readonly options: ConversationClientOptions) {
    super();
    this.backoff = new Backoff(options.backoff);
    this.Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (options.autoConnect ?? true) this.connect();
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** The current session (`session.ready`), while open. */
  get sessionInfo(): SessionReadyPayload | undefined {
    return this.statusValue === 'open' ? this.session : undefined;
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
      return { clientMessageId: p.client_message_id!, threadId: p.thread_id, content: p.content, state: r.sent ? 'sent' : 'queued' };
    });
  }

  /** Starts (or restarts, after `stopped`) connecting. */
  connect(): void {
    if (this.statusValue === 'connecting' || this.statusValue === 'open' || this.statusValue === 'reconnecting') return;
    (globalThis as { addEventListener?: (type: string, fn: () => void) => void }).addEventListener?.('online', this.onOnline);
    this.backoff.reset();
    this.refreshes = 0;
    void this.open();
  }

  /** Closes the socket for good; pending requests reject with `client_closed`. */
  close(): void {
    this.stopTimers();
    (globalThis as { removeEventListener?: (type: string, fn: () => void) => void }).removeEventListener?.('online', this.onOnline);
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.socket.close(1000, 'client closed');
    this.book.rejectAll(new ConversationError('client_closed', 'The client was closed.'));
    this.setStatus('closed', {});
    this.emit('outbox', this.outbox);
  }

  // ---- requests --------------------------------------------------------------------------------

  /** Sends a message; resolves with the ack once the server stored it. Queued while offline. */
  send(content: string, options: SendOptions = {}): Promise<MessageSendResult> {
    const payload: ClientPayloads['message.send'] = {
      content,
      client_message_id: options.clientMessageId ?? newId(),
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
    return this.subscribe(threadId, 1);
  }

  /** Stops following; the state is kept (pass `forget` to drop it). */
  unfollow(threadId: string, options: { forget?: boolean } = {}): Promise<UnsubscribeResult> {
    const state = this.threadStates.get(threadId);
    if (state) state.following = false;
    if (options.forget) this.threadStates.delete(threadId);
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
  request<R>(type: ClientFrameType, payload: ClientPayloads[ClientFrameType] | (() => ClientPayloads[ClientFrameType]), options: { timeoutMs?: number; priority?: number } = {}): Promise<R> {
    if (this.statusValue === 'closed' || this.statusValue === 'stopped') {
      return Promise.reject(new ConversationError('client_closed', `The client is ${this.statusValue}; call connect() first.`));
    }
    const { request, promise } = this.book.add({
      type,
      payload: typeof payload === 'function' ? payload : () => payload,
      resend: RESENDABLE.has(type),
      priority: options.priority ?? 2,
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs ?? 15_000,
    });
    if (this.statusValue === 'open') this.write(request);
    return promise as Promise<R>;
  }

  // ---- the connection ----------------------------------------------------------------------------

  private async open(): Promise<void> {
    this.setStatus(this.backoff.attempts === 0 ? 'connecting' : 'reconnecting', { attempt: this.backoff.attempts });
    if (!this.Impl) {
      this.stop({ code: 'client_closed', message: 'No WebSocket implementation: pass one as options.WebSocket (in Node: the ws package).' });
      return;
    }
    let handshake: Handshake;
    try {
      const token = await this.options.token();
      if (!token) throw new Error('the token provider returned no token');
      handshake = await this.handshake(token);
    } catch (error) {
      if (this.finished) return;
      this.emit('error', new ConversationError('token_unavailable', `Could not get a token: ${(error as Error)?.message ?? error}`, true));
      return this.retryLater({ code: 'token_unavailable', message: 'Could not get a token.' });
    }
    if (this.finished) return;
    // The ticket endpoint refused the token: the same verdicts as a refused handshake.
    if ('refused' in handshake) return this.ended(undefined, { kind: 'http', ...handshake.refused });
    const { url, protocols } = handshake;
    if (this.finished) return;
    const attempt: Attempt = { socket: undefined as unknown as WebSocketLike, ready: false, openedAt: Date.now() };
    attempt.socket = openSocket(this.Impl, url, protocols, (http) => (attempt.http = http));
    this.attempt = attempt;
    attempt.timer = setTimeout(() => this.drop(attempt, 'the handshake timed out'), this.options.connectTimeoutMs ?? 10_000);
    attempt.socket.onmessage = (event) => this.attempt === attempt && this.onText(attempt, String(event.data));
    attempt.socket.onclose = (event) => this.ended(attempt, { kind: 'close', code: event.code, reason: event.reason, error: attempt.refusal });
    attempt.socket.onerror = () => {};
  }

  /** The URL and subprotocols of one handshake (with a ticket fetched first, for `transport: 'ticket'`). */
  private async handshake(token: string): Promise<Handshake> {
    const url = socketUrl(this.options.url);
    if (this.options.transport !== 'ticket') return { url, protocols: [PROTOCOL, `bearer.${token}`] };
    const endpoint = url.replace(/^ws/, 'http').replace(/\/v1\/ws(\?.*)?$/, '/v1/ws-ticket');
    const res = await fetch(endpoint, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json().catch(() => undefined)) as (Partial<ErrorPayload> & { ticket?: string }) | undefined;
    if (!res.ok || !body?.ticket) return { refused: { status: res.status, body } };
    return { url: `${url}${url.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(body.ticket)}`, protocols: [PROTOCOL] };
  }

  private onText(attempt: Attempt, text: string): void {
    this.lastInbound = Date.now();
    let frame: { type?: string; id?: string; payload?: Record<string, unknown> };
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const payload = (frame.payload ?? {}) as Record<string, unknown>;
    switch (frame.type) {
      case 'session.ready':
        return this.onReady(attempt, payload as unknown as SessionReadyPayload);
      case 'ack':
      case 'pong':
        if (frame.id) this.book.settle(frame.id, undefined, payload);
        return;
      case 'error':
        return this.onError(attempt, frame.id, payload as unknown as ErrorPayload);
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

  private onReady(attempt: Attempt, session: SessionReadyPayload): void {
    clearTimeout(attempt.timer);
    attempt.ready = true;
    this.session = session;
    this.refreshes = 0;
    // The backoff window closes only for a session that holds, so a server that accepts and at
    // once drops does not get hammered.
    attempt.timer = setTimeout(() => this.backoff.reset(), 5_000);
    this.setStatus('open', { attempt: this.backoff.attempts });
    this.startHeartbeat(attempt);
    const queued = new Set(this.book.unsent().filter((r) => r.type === 'thread.subscribe').map((r) => (r.payload() as { thread_id: string }).thread_id));
    for (const state of this.threadStates.values()) {
      if (state.following && !queued.has(state.threadId)) void this.subscribe(state.threadId, 0).catch(() => {});
    }
    for (const request of this.book.unsent()) this.write(request);
    this.emit('outbox', this.outbox);
    this.emit('ready', session);
  }

  private onError(attempt: Attempt, id: string | undefined, error: ErrorPayload): void {
    if (!attempt.ready && !id) {
      attempt.refusal = error;
      return;
    }
    const failure = new ConversationError(error.code, error.message, error.retryable, error.retry_after_ms, error.last_seq);
    if (id && this.book.settle(id, failure)) return;
    this.emit('error', failure);
  }

  private onEvent(event: ThreadEvent): void {
    const state = this.stateOf(event.payload.thread_id);
    if (!applyEvent(state, event)) return;
    this.emit('event', event);
    this.emit('thread', state);
  }

  /** thread.subscribe from the newest seq held when the frame is written; out of range: start over. */
  private subscribe(threadId: string, priority: number): Promise<ThreadSubscribeResult> {
    const payload = () => ({ thread_id: threadId, after_seq: this.threadStates.get(threadId)?.lastSeq ?? 0 });
    return this.request<ThreadSubscribeResult>('thread.subscribe', payload, { priority }).catch((error: unknown) => {
      if (error instanceof ConversationError && error.code === 'seq_out_of_range') {
        // This client is ahead of the server (a restored database): what it holds is not the log.
        const state = emptyThread(threadId);
        state.following = true;
        this.threadStates.set(threadId, state);
        this.emit('thread', state);
        return this.request<ThreadSubscribeResult>('thread.subscribe', { thread_id: threadId, after_seq: 0 }, { priority });
      }
      if (error instanceof ConversationError && error.code === 'not_found') this.dropThread(threadId);
      throw error;
    });
  }

  private async refreshToken(): Promise<void> {
    try {
      const token = await this.options.token();
      const ack = await this.request<RefreshResult>('auth.refresh', { token }, { priority: 0 });
      this.emit('tokenRefreshed', ack.token_expires_at);
    } catch (error) {
      // The socket closes at the token's exp (4001) and the next connect asks for a token again.
      // A socket that dropped meanwhile needs no refresh: its successor gets a fresh token.
      if (error instanceof ConversationError && (error.code === 'connection_lost' || error.code === 'client_closed')) return;
      this.emit('error', error instanceof ConversationError ? error : new ConversationError('token_unavailable', `Could not refresh the token: ${(error as Error)?.message ?? error}`, true));
    }
  }

  private write(request: PendingRequest): void {
    const socket = this.attempt?.socket;
    if (!socket || socket.readyState !== 1) return;
    socket.send(JSON.stringify({ type: request.type, id: request.id, payload: request.payload() }));
    this.book.sent(request, (late) => {
      this.book.settle(late.id, new ConversationError('request_timeout', `No answer to ${late.type} within ${late.timeoutMs} ms.`, true));
      this.emit('outbox', this.outbox);
    });
  }

  private startHeartbeat(attempt: Attempt): void {
    clearInterval(this.heartbeatTimer);
    const every = this.options.heartbeatMs ?? 25_000;
    if (every <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      if (this.attempt !== attempt || Date.now() - this.lastInbound < every) return;
      this.request('ping', {}, { timeoutMs: Math.min(10_000, Math.max(1_000, every)), priority: 0 }).catch(() => {
        if (this.attempt === attempt) this.drop(attempt, 'no answer to ping');
      });
    }, every);
  }

  /** Gives up on a socket that stopped answering; its late events are ignored. */
  private drop(attempt: Attempt, message: string): void {
    if (this.attempt !== attempt) return;
    attempt.socket.onclose = null;
    attempt.socket.onmessage = null;
    try {
      attempt.socket.close(4000, message);
    } catch {
      // already closing
    }
    this.ended(attempt, { kind: 'close', code: 1006, reason: message });
  }

  private ended(attempt: Attempt | undefined, end: SocketEnd): void {
    if (attempt) {
      if (this.attempt !== attempt) return;
      clearTimeout(attempt.timer);
      this.attempt = undefined;
    }
    clearInterval(this.heartbeatTimer);
    this.book.disconnected();
    this.emit('outbox', this.outbox);
    if (this.finished) return;
    const verdict = judge(attempt?.http ? { kind: 'http', ...attempt.http } : end);
    const closeCode = end.kind === 'close' ? end.code : undefined;
    const httpStatus = attempt?.http?.status ?? (end.kind === 'http' ? end.status : undefined);
    if (verdict.action === 'stop' || (verdict.action === 'refresh' && this.refreshes >= 1)) {
      return this.stop({ code: verdict.code ?? 'unauthenticated', message: verdict.message ?? 'Refused.', closeCode, httpStatus });
    }
    if (verdict.action === 'refresh') {
      this.refreshes += 1;
      this.setStatus('reconnecting', { attempt: this.backoff.attempts, delayMs: 0, code: verdict.code, message: verdict.message, closeCode });
      void this.open();
      return;
    }
    this.retryLater({ code: verdict.code, message: verdict.message, closeCode }, verdict.atLeastMs);
  }

  private retryLater(detail: Omit<StatusDetail, 'attempt'>, atLeastMs = 0): void {
    const delayMs = this.backoff.next(atLeastMs);
    this.setStatus('reconnecting', { ...detail, attempt: this.backoff.attempts, delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), delayMs);
  }

  private connectNow(): void {
    clearTimeout(this.retryTimer);
    void this.open();
  }

  private stop(refusal: Refusal): void {
    this.stopTimers();
    this.book.rejectAll(new ConversationError('client_closed', `The client stopped: ${refusal.message}`));
    this.setStatus('stopped', { attempt: this.backoff.attempts, code: refusal.code, message: refusal.message, closeCode: refusal.closeCode });
    this.emit('outbox', this.outbox);
    this.emit('refused', refusal);
  }

  private stopTimers(): void {
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    if (this.attempt) clearTimeout(this.attempt.timer);
  }

  private setStatus(status: ConnectionStatus, detail: Partial<StatusDetail>): void {
    this.statusValue = status;
    this.emit('status', status, { attempt: 0, ...detail });
  }

  /** Closed or stopped: nothing may reconnect until connect(). */
  private get finished(): boolean {
    return this.statusValue === 'closed' || this.statusValue === 'stopped';
  }

  private stateOf(threadId: string, afterSeq = 0): ThreadState {
    let state = this.threadStates.get(threadId);
    if (!state) this.threadStates.set(threadId, (state = emptyThread(threadId, afterSeq)));
    return state;
  }

  private dropThread(threadId: string): void {
    if (!this.threadStates.delete(threadId)) return;
    this.emit('threadDeleted', threadId);
  }
}

/** `ws(s)://host/v1/ws` from a socket URL or an http(s) base URL. */
export function socketUrl(url: string): string {
  const withScheme = url.replace(/^http(s?):/, 'ws$1:');
  return /\/v1\/ws(\?|$)/.test(withScheme) ? withScheme : `${withScheme.replace(/\/+$/, '')}/v1/ws`;
}

/** A client_message_id: random, and also available outside secure contexts (no randomUUID there). */
function newId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
