/**
 * One WebSocket connection: who it is, and the one send path of the gateway. Every frame a socket
 * gets goes through `Connection.send` (or `sendReplay`, for a paced replay), which knows whether
 * the socket is already closed (touching a closed uWS socket throws) and cuts off a client that
 * has stopped reading instead of letting its buffer grow or, worse, dropping its frames. The one
 * other way out is the fan-out's topic publish (../fanout/topic-publish.ts), which keeps the same
 * rules.
 *
 * What else a socket holds lives beside it, each made on first use: its ordered inbox
 * (./ordered-inbox.ts), its frame rate and bad-frame count (./frame-rate.ts, ./bad-frames.ts),
 * its token lifetime (./token-lifetime.ts).
 */
import type { WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { CloseCodes } from '../../protocol/codes.js';
import type { ErrorCode } from '../../protocol/codes.js';
import type { ServerPayloads } from '../../protocol/frames.js';
import type { Principal } from '../auth.js';
import { errorBody } from '../errors.js';
import { guard } from '../guard.js';
import { metrics } from '../../metrics/index.js';
import { encodeFrame, type ServerFrameType } from './frame-encode.js';
import type { Refusal } from './handshake-refusal.js';
import { OrderedInbox } from './ordered-inbox.js';
import { BadFrameCounter } from './bad-frames.js';
import { FrameRate } from './frame-rate.js';
import { TokenLifetime } from './token-lifetime.js';
import { DrainWait } from './drain-wait.js';
import { recheckLater } from './backpressure-recheck.js';

/**
 * What a uWS socket carries: its connection, or, for a handshake refused by close (a browser
 * client), only the refusal to tell it before closing.
 */
export interface SocketData {
  connection?: Connection;
  refusal?: Refusal;
}

/** What every connection of one gateway shares: one object per gateway, not a field each per socket. */
export interface ConnectionContext {
  /** The gateway's logger, parent of each connection's own. */
  readonly log: Logger;
  /** MAX_BUFFERED_BYTES: a socket holding more is closed as a slow consumer (1013). */
  readonly maxBufferedBytes: number;
}

/** What few sockets need, made together on first use: an idle socket holds one empty field for it. */
interface Extras {
  log?: Logger;
  followed?: Set<string>;
  inbox?: OrderedInbox;
  frameRate?: FrameRate;
  badFrames?: BadFrameCounter;
  drainWait?: DrainWait;
}

export class Connection {
  ws?: WebSocket<SocketData>;
  closed = false;
  /** The token's warning and expiry; `auth.refresh` extends it. */
  readonly token: TokenLifetime;
  // An idle socket should cost the gateway little beyond uWS's own share (see the idle-sockets
  // benchmark): what most sockets never need is made on first use, in one object.
  private extras?: Extras;

  constructor(
    readonly id: string,
    readonly principal: Principal,
    private readonly context: ConnectionContext,
    /** The peer address's key when a policy close (4008) counts against it too (RateLimiter.policyAddress), else ''. */
    readonly address = '',
  ) {
    this.token = new TokenLifetime(this);
  }

  private get more(): Extras {
    return (this.extras ??= {});
  }

  /** The connection's logger (connection_id, user_id, workspace_id), made when first needed: most sockets never log. */
  get log(): Logger {
    return (this.more.log ??= this.context.log.child({ connection_id: this.id, user_id: this.principal.userId, workspace_id: this.principal.workspaceId }));
  }

  get owner() {
    return { workspaceId: this.principal.workspaceId, userId: this.principal.userId };
  }

  /** Thread ids this socket follows; the fan-out holds the per-thread state. */
  get threads(): Set<string> {
    return (this.more.followed ??= new Set());
  }

  /** How many threads this socket follows (without making the set). */
  get threadCount(): number {
    return this.extras?.followed?.size ?? 0;
  }

  /** The socket's frames, run one after another in the order they were sent. */
  get inbox(): OrderedInbox {
    return (this.more.inbox ??= new OrderedInbox((error) => this.fail(error)));
  }

  /** RATE_LIMIT_FRAMES_PER_SEC on this socket. */
  get frames(): FrameRate {
    return (this.more.frameRate ??= new FrameRate());
  }

  /** BAD_FRAME_LIMIT on this socket. */
  get badFrames(): BadFrameCounter {
    return (this.more.badFrames ??= new BadFrameCounter());
  }

  // ---- the send path ---------------------------------------------------------------------------

  /** Sends one encoded frame. Returns false if the socket is closed or was just cut off as too slow. */
  send(frame: string): boolean {
    if (!this.sendReplay(frame)) return false;
    // Inside a cork the last few KiB reach the buffer only at uncork: checked now and again later.
    this.checkBackpressure();
    return !this.closed;
  }

  /** Sends one of the server's own frames; the payload is checked against its type at compile time. */
  sendFrame<T extends ServerFrameType>(type: T, payload: ServerPayloads[T], id?: string): boolean {
    return this.send(encodeFrame(type, payload, id));
  }

  sendError(id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number, details?: { last_seq?: number }): boolean {
    metrics.errorSent(code);
    return this.sendFrame('error', errorBody(code, message, retryAfterMs, details), id);
  }

  /** Sends a replayed frame: the caller paces with hasRoom()/drained(), so no bound check here. */
  sendReplay(frame: string): boolean {
    if (this.closed || !this.ws) return false;
    // 2 = dropped by uWS's own limit: the client would miss a frame, so it must not stay connected.
    if (this.ws.send(frame, false) === 2) {
      this.close(CloseCodes.slow_consumer, 'slow consumer');
      return false;
    }
    metrics.frameOut(frame);
    return true;
  }

  cork(fn: () => void): void {
    if (this.closed || !this.ws) return;
    this.ws.cork(fn);
  }

  // ---- backpressure ----------------------------------------------------------------------------

  /**
   * Checks the buffer after a send or a topic publish reached this socket. uWS only queues a
   * publish under 16 KiB and writes it at the end of the loop iteration (or with the subscriber's
   * 32nd queued message), so the buffer seen here may lag by up to 31 frames: the check is repeated
   * once that write has happened, or a burst that ends just past the bound would leave the socket open.
   */
  checkBackpressure(): void {
    if (this.overBound()) return;
    recheckLater(this);
  }

  /** Closes the socket with 1013 if it holds more than the bound; true if it is closed. */
  overBound(): boolean {
    if (this.closed || !this.ws) return true;
    if (this.ws.getBufferedAmount() <= this.context.maxBufferedBytes) return false;
    this.close(CloseCodes.slow_consumer, 'slow consumer');
    return true;
  }

  /** Replay pacing: the replay writes while the buffer is at most half the bound. */
  hasRoom(): boolean {
    return !this.closed && !!this.ws && this.ws.getBufferedAmount() <= this.context.maxBufferedBytes / 2;
  }

  /** uWS's drain handler: some of the buffer was written. */
  onDrain(): void {
    this.extras?.drainWait?.wake();
  }

  /**
   * Resolves once there is room again (or the socket is closed). A client that takes nothing for
   * `stallMs` is a slow consumer: closed with 1013.
   */
  drained(stallMs: number): Promise<void> {
    if (this.hasRoom() || this.closed) return Promise.resolve();
    return (this.more.drainWait ??= new DrainWait(this)).wait(stallMs);
  }

  // ---- closing ---------------------------------------------------------------------------------

  close(code: number, reason: string): void {
    if (this.closed || !this.ws) return;
    this.closed = true;
    this.token.cancel();
    if (code === CloseCodes.slow_consumer) metrics.backpressureClose();
    this.ws.end(code, reason);
  }

  /** An unexpected error in this socket's own work: logged, and only this socket is closed (1011). */
  fail(error: unknown): void {
    this.log.error({ err: error }, 'unexpected error; closing this socket');
    this.close(CloseCodes.internal_error, 'internal error');
  }

  /** `fn` behind the gateway's guard: an exception closes this socket (1011), nothing else. */
  guarded(fn: () => void): () => void {
    return guard(this.context.log, 'connection timer', fn, (error) => this.fail(error));
  }

  /** The socket's close handler ran: it can no longer be touched. */
  markClosed(): void {
    this.closed = true;
    this.token.cancel();
  }
}
