/** The client's options, statuses and events: its public vocabulary. */
import type { BusyPolicy, SessionReadyPayload, ThreadEvent } from '../frames.js';
import type { BackoffOptions } from './backoff.js';
import type { ConversationError } from './errors.js';
import type { WebSocketConstructor } from './socket.js';
import type { ThreadState } from './thread-state.js';

/**
 * Returns a JWT for the current user; called before every connect and whenever the token nears
 * expiry. A provider that throws is asked again with backoff, unless its error says that asking
 * again cannot help — a `status` of 401 or 403 (the host app's token endpoint answered "not signed
 * in" or "not allowed"), or `fatal: true`: then the client stops with a `refused` event.
 */
export type TokenProvider = () => string | Promise<string>;

export interface ConversationClientOptions {
  /** The socket URL, e.g. `wss://chat.example.com/v1/ws` (an http(s) base URL is accepted too). */
  url: string;
  token: TokenProvider;
  /** The WebSocket implementation. @defaultValue globalThis.WebSocket (in Node 20: pass `ws`) */
  WebSocket?: WebSocketConstructor;
  /**
   * How the token travels: as the `bearer.<jwt>` subprotocol, or as a one-use `?ticket=` from
   * `POST /v1/ws-ticket` (keeps the JWT out of the handshake). `auto`: the subprotocol for a token
   * of up to 2 KB (`SUBPROTOCOL_TOKEN_LIMIT`), a ticket for a longer one, and the other way after an
   * attempt that failed before the server read the token (handshake.ts). @defaultValue 'auto'
   */
  transport?: 'auto' | 'subprotocol' | 'ticket';
  /** How long a request may wait for its answer once sent. @defaultValue 15000 */
  requestTimeoutMs?: number;
  /** How long the handshake may take, up to `session.ready`. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /** Silence after which the client pings; no answer within min(10 s, max(1 s, heartbeatMs)) drops the socket. 0: off. @defaultValue 25000 */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /**
   * The largest frame the server reads (its MAX_FRAME_BYTES, in UTF-8 bytes): a request whose frame
   * is larger is rejected with `too_large` before it is written. A server that closes with 1009
   * (`frame over N bytes`) lowers it to N. @defaultValue 65536
   */
  maxFrameBytes?: number;
  /**
   * Requests on the wire at once; the rest wait in order. The server lets 32 frames wait per
   * connection (MAX_QUEUED_FRAMES) and refuses the rest. @defaultValue 16
   */
  maxInFlight?: number;
  /**
   * A request refused with `rate_limited` (or, when repeating it is harmless, `unavailable`) is
   * sent again after the server's `retry_after_ms`, up to this many times, while that wait is at
   * most `maxRetryDelayMs`; otherwise it rejects with the server's error. @defaultValue 5
   */
  retries?: number;
  /** @defaultValue 5000 */
  maxRetryDelayMs?: number;
  /**
   * States kept for threads the client does not follow (the least recently used go first);
   * followed threads are always kept. @defaultValue 10
   */
  keepThreads?: number;
  /** Connect as soon as the constructor returns (in a microtask, so listeners added at once hear every event). @defaultValue true */
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
  /**
   * Why the last socket ended, where known: an error code, or the client's own (`connect_failed`:
   * it closed before the upgrade; `message` names the likely causes).
   */
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
