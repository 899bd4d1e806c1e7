/**
 * The socket half of the client: one WebSocket at a time, kept open. It asks the token provider
 * before every connect, sends the token as handshake.ts chooses, waits for `session.ready`, reads
 * how a socket ended (refusals.ts) and acts on it (reconnect-policy.ts, which this extends):
 * reconnect after a backoff, reconnect at once with a fresh token, or stop. A socket that goes
 * silent is pinged and, without an answer, replaced. What travels on the socket is the client's
 * business (conversation-client.ts); the link only hands frames over.
 */
import type { ErrorPayload, SessionReadyPayload } from '../frames.js';
import { ConversationError } from './errors.js';
import { ReconnectPolicy, type Attempt, type LinkHooks } from './reconnect-policy.js';
import { fatalProviderError, type SocketEnd } from './refusals.js';
import { openSocket, type InboundFrame, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import type { ConversationClientOptions } from './types.js';

export class Link extends ReconnectPolicy {
  private readonly Impl: WebSocketConstructor | undefined;
  private attempt?: Attempt;
  /** Counts open() calls: one that finds a newer one started while it awaited gives up. */
  private generation = 0;
  private heartbeatTimer?: ReturnType<typeof setInterval>;
  private lastInbound = 0;
  private pings = 0;

  constructor(options: ConversationClientOptions, hooks: LinkHooks) {
    super(options, hooks);
    this.Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  }

  start(): void {
    if (this.status === 'connecting' || this.status === 'open' || this.status === 'reconnecting') return;
    (globalThis as { addEventListener?: (type: string, fn: () => void) => void }).addEventListener?.('online', this.onOnline);
    this.backoff.reset();
    this.refreshes = 0;
    void this.open();
  }

  close(): void {
    this.stopTimers();
    (globalThis as { removeEventListener?: (type: string, fn: () => void) => void }).removeEventListener?.('online', this.onOnline);
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.socket.close(1000, 'client closed');
    this.setStatus('closed', {});
  }

  /** Writes a frame on the open socket; false when there is none. */
  send(text: string): boolean {
    const socket = this.attempt?.ready ? this.attempt.socket : undefined;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(text);
    return true;
  }

  protected async open(): Promise<void> {
    const generation = ++this.generation;
    this.clearRetry();
    // One socket at a time: an attempt this one replaces is let go (its requests go back to the queue).
    const replaced = this.attempt;
    if (replaced) {
      this.attempt = undefined;
      this.discard(replaced, 'replaced by a new connection');
      clearInterval(this.heartbeatTimer);
      this.hooks.lost();
    }
    this.setStatus(this.backoff.attempts === 0 ? 'connecting' : 'reconnecting', { attempt: this.backoff.attempts });
    if (this.finished) return; // closed by a status listener
    if (!this.Impl) {
      return this.stop({ code: 'client_closed', message: 'No WebSocket implementation: pass one as options.WebSocket (in Node: the ws package).' });
    }
    let token: string;
    try {
      token = await this.options.token();
      if (!token) throw new Error('the token provider returned no token');
    } catch (error) {
      if (this.finished || generation !== this.generation) return;
      const fatal = fatalProviderError(error);
      if (fatal) return this.stop(fatal);
      this.hooks.error(new ConversationError('token_unavailable', `Could not get a token: ${(error as Error)?.message ?? error}`, true));
      return this.retryLater({ code: 'token_unavailable', message: 'Could not get a token.' });
    }
    const handshake = await this.handshakes.prepare(token);
    if (this.finished || generation !== this.generation) return;
    if ('failed' in handshake) return this.retryLater({ code: 'connect_failed', message: handshake.failed });
    // The ticket endpoint refused the token: the same verdicts as a refused handshake.
    if ('refused' in handshake) return this.ended(undefined, { kind: 'http', ...handshake.refused });
    const attempt: Attempt = { socket: undefined as unknown as WebSocketLike, transport: handshake.transport, ready: false };
    attempt.socket = openSocket(this.Impl, handshake.url, handshake.protocols, (http) => (attempt.http = http));
    this.attempt = attempt;
    attempt.timer = setTimeout(() => this.drop(attempt, 'the handshake timed out'), this.options.connectTimeoutMs ?? 10_000);
    attempt.socket.onopen = () => (attempt.opened = true);
    attempt.socket.onmessage = (event) => this.attempt === attempt && this.onText(attempt, String(event.data));
    attempt.socket.onclose = (event) => this.ended(attempt, { kind: 'close', code: event.code, reason: event.reason, error: attempt.refusal });
    attempt.socket.onerror = () => {};
  }

  private onText(attempt: Attempt, text: string): void {
    this.lastInbound = Date.now();
    let frame: InboundFrame;
    try {
      frame = JSON.parse(text) as InboundFrame;
    } catch {
      return;
    }
    if (frame.type === 'session.ready') return this.onReady(attempt, frame.payload as unknown as SessionReadyPayload);
    if (!attempt.ready) {
      if (frame.type === 'error' && !frame.id) attempt.refusal = frame.payload as unknown as ErrorPayload;
      return;
    }
    this.hooks.frame(frame);
  }

  private onReady(attempt: Attempt, session: SessionReadyPayload): void {
    clearTimeout(attempt.timer);
    attempt.ready = true;
    this.refreshes = 0;
    // The backoff window closes only for a session that holds, so a server that accepts and at
    // once drops does not get hammered.
    attempt.timer = setTimeout(() => this.backoff.reset(), 5_000);
    this.setStatus('open', { attempt: this.backoff.attempts });
    this.startHeartbeat(attempt);
    this.hooks.ready(session);
  }

  /** After `heartbeatMs` of silence a ping; nothing at all back within the timeout drops the socket. */
  private startHeartbeat(attempt: Attempt): void {
    clearInterval(this.heartbeatTimer);
    const every = this.options.heartbeatMs ?? 25_000;
    if (every <= 0) return;
    const timeout = Math.min(10_000, Math.max(1_000, every));
    this.heartbeatTimer = setInterval(() => {
      if (this.attempt !== attempt || Date.now() - this.lastInbound < every) return;
      const sentAt = Date.now();
      this.send(JSON.stringify({ type: 'ping', id: `heartbeat-${++this.pings}`, payload: {} }));
      setTimeout(() => {
        if (this.attempt === attempt && this.lastInbound < sentAt) this.drop(attempt, 'no answer to ping');
      }, timeout);
    }, every);
  }

  /** Gives up on a socket that stopped answering; its late events are ignored. */
  private drop(attempt: Attempt, message: string): void {
    if (this.attempt !== attempt) return;
    this.discard(attempt, message);
    this.ended(attempt, { kind: 'close', code: 1006, reason: message });
  }

  /** Closes a socket without hearing from it again. */
  private discard(attempt: Attempt, message: string): void {
    clearTimeout(attempt.timer);
    attempt.socket.onclose = null;
    attempt.socket.onmessage = null;
    try {
      attempt.socket.close(4000, message);
    } catch {
      // already closing
    }
  }

  private ended(attempt: Attempt | undefined, end: SocketEnd): void {
    if (attempt) {
      if (this.attempt !== attempt) return;
      clearTimeout(attempt.timer);
      this.attempt = undefined;
    }
    clearInterval(this.heartbeatTimer);
    this.afterEnd(attempt, end);
  }

  protected stopTimers(): void {
    this.clearRetry();
    clearInterval(this.heartbeatTimer);
    if (this.attempt) clearTimeout(this.attempt.timer);
  }
}
