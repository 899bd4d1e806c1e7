/**
 * `ConversationClient`: protocol v1 over one socket that is kept open (link.ts). It turns requests
 * into promises that wait in a queue while offline (request-queue.ts: their order, their pace and
 * their size), routes what the server sends, resumes every followed thread after a reconnect and
 * answers `auth.expiring` with a fresh token. It is the top layer of three: the typed requests
 * (request-methods.ts) and the thread states (thread-following.ts) are below it. It has no
 * dependencies, so it runs in browsers and in Node (pass `ws`).
 */
import type { ClientFrameType, ClientPayloads, ErrorPayload, MessageSendResult, SessionReadyPayload, ThreadEvent } from '../frames.js';
import type { RefreshResult, ThreadDeletedResult } from '../results.js';
import { CloseCodes } from '../codes.js';
import { ConversationError } from './errors.js';
import { Link } from './link.js';
import { outboxOf, sendPayload } from './outbox.js';
import { RequestQueue } from './request-queue.js';
import type { InboundFrame } from './socket.js';
import { ThreadFollowing } from './thread-following.js';
import type { ConnectionStatus, ConversationClientOptions, OutboxEntry, SendOptions } from './types.js';

export class ConversationClient extends ThreadFollowing {
  private readonly queue: RequestQueue;
  private readonly link: Link;
  private session?: SessionReadyPayload;

  constructor(private readonly options: ConversationClientOptions) {
    super(options.keepThreads ?? 10);
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

  /** Sends waiting for their ack, oldest first. */
  get outbox(): OutboxEntry[] {
    return outboxOf(this.queue.book);
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
    const result = this.request<MessageSendResult>('message.send', sendPayload(content, options));
    this.emit('outbox', this.outbox);
    return result.then(
      (ack) => {
        this.sentTo(ack.thread_id);
        this.emit('outbox', this.outbox);
        return ack;
      },
      (error: unknown) => {
        this.emit('outbox', this.outbox);
        throw error;
      },
    );
  }

  async deleteThread(threadId: string): Promise<ThreadDeletedResult> {
    const result = await this.request<ThreadDeletedResult>('thread.delete', { thread_id: threadId });
    this.dropThread(threadId);
    return result;
  }

  /**
   * Any request frame, answered by its ack payload (or rejected with a ConversationError).
   * `timeoutMs` counts from when the frame is written.
   */
  override request<R>(type: ClientFrameType, payload: ClientPayloads[ClientFrameType] | (() => ClientPayloads[ClientFrameType]), options: { timeoutMs?: number; urgent?: boolean } = {}): Promise<R> {
    if (this.link.finished) {
      return Promise.reject(new ConversationError('client_closed', `The client is ${this.link.status}; call connect() first.`));
    }
    return this.queue.add(type, typeof payload === 'function' ? payload : () => payload, options) as Promise<R>;
  }

  // ---- frames ----------------------------------------------------------------------------------

  private onReady(session: SessionReadyPayload): void {
    this.session = session;
    this.resume(new Set(this.queue.book.unsent().filter((r) => r.type === 'thread.subscribe').map((r) => (r.payload() as { thread_id: string }).thread_id)));
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
}
