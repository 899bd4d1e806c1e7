/**
 * One WebSocket connection's state. Every send goes through `Connection.send`, which knows whether
 * the socket is already closed (touching a closed uWS socket throws) and cuts off a client that
 * has stopped reading instead of letting its buffer grow or, worse, dropping its frames.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { CloseCodes } from '../protocol/codes.js';
import type { ErrorCode } from '../protocol/codes.js';
import type { Principal } from './auth.js';
import { errorBody } from './errors.js';
import { guard } from './guard.js';
import { tokenClock, type ClockEntry } from './token-clock.js';
import type { Refusal } from './upgrade.js';
import { metrics } from '../metrics/index.js';

/**
 * What a uWS socket carries: its connection, or, for a handshake refused by close (a browser
 * client), only the refusal to tell it before closing.
 */
export interface SocketData {
  connection?: Connection;
  refusal?: Refusal;
}

export class Connection {
  ws?: WebSocket<SocketData>;
  closed = false;
  expiresAt: Date;
  // What most sockets never need is made on first use: an idle socket should cost the gateway
  // little beyond uWS's own share (see the idle-sockets benchmark).
  private childLog?: Logger;
  private followed?: Set<string>;

  /** Thread ids this socket follows; the fan-out holds the per-thread state. */
  get threads(): Set<string> {
    return (this.followed ??= new Set());
  }

  /** How many threads this socket follows (without making the set). */
  get threadCount(): number {
    return this.followed?.size ?? 0;
  }

  constructor(
    readonly id: string,
    readonly principal: Principal,
    private readonly rootLog: Logger,
    private readonly maxBufferedBytes: number,
  ) {
    this.expiresAt = principal.expiresAt;
  }

  /** The connection's logger (connection_id, user_id, workspace_id), made when first needed: most sockets never log. */
  get log(): Logger {
    return (this.childLog ??= this.rootLog.child({ connection_id: this.id, user_id: this.principal.userId, workspace_id: this.principal.workspaceId }));
  }

  private inbox?: Array<() => Promise<void>>;
  private working = false;

  /**
   * Runs `task` after every task queued before it has finished, so the frames of one connection
   * take effect in the order they were sent, whatever their types. False (nothing queued) when
   * `limit` tasks are already waiting.
   */
  enqueue(task: () => Promise<void>, limit: number): boolean {
    const inbox = (this.inbox ??= []);
    if (inbox.length >= limit) return false;
    inbox.push(task);
    if (!this.working) void this.work(inbox);
    return true;
  }

  private async work(inbox: Array<() => Promise<void>>): Promise<void> {
    this.working = true;
    try {
      // Tasks settle on their own errors (the dispatcher answers them); a throw here is a bug.
      for (let task = inbox.shift(); task; task = inbox.shift()) await task().catch((error: unknown) => this.fail(error));
    } finally {
      this.working = false;
    }
  }

  /** An unexpected error in this socket's own work: logged, and only this socket is closed (1011). */
  fail(error: unknown): void {
    this.log.error({ err: error }, 'unexpected error; closing this socket');
    this.close(CloseCodes.internal_error, 'internal error');
  }

  get owner() {
    return { workspaceId: this.principal.workspaceId, userId: this.principal.userId };
  }

  /** Sends one text frame. Returns false if the socket is closed or was just cut off as too slow. */
  send(frame: string): boolean {
    if (!this.sendReplay(frame)) return false;
    // Inside a cork the last few KiB reach the buffer only at uncork: checked now and again later.
    this.checkBackpressure();
    return !this.closed;
  }

  sendFrame(type: string, payload: unknown, id?: string): boolean {
    return this.send(JSON.stringify(id === undefined ? { type, payload } : { type, id, payload }));
  }

  sendError(id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number, details?: { last_seq?: number }): boolean {
    metrics.errorSent(code);
    return this.sendFrame('error', errorBody(code, message, retryAfterMs, details), id);
  }

  private badFrames = 0;
  private badFramesSince = 0;

  /** Counts an invalid frame; true once more than `limit` arrived within 10 s (close the socket). */
  countBadFrame(limit: number): boolean {
    const now = Date.now();
    if (now - this.badFramesSince > 10_000) {
      this.badFrames = 0;
      this.badFramesSince = now;
    }
    return ++this.badFrames > limit;
  }

  /** When the next frame is due under RATE_LIMIT_FRAMES_PER_SEC (GCRA's theoretical arrival time). */
  private frameTat = 0;

  /**
   * Admits one inbound frame under `perSecond` (0: no limit): a burst of up to `perSecond` frames,
   * then one every 1000/perSecond ms. Synchronous, so frames keep their order. Returns 0 when
   * admitted, else the ms until a frame would be.
   */
  admitFrame(perSecond: number): number {
    if (perSecond <= 0) return 0;
    const now = performance.now();
    const interval = 1000 / perSecond;
    const due = Math.max(this.frameTat, now);
    const early = due + interval - now - 1000;
    // The epsilon absorbs float error in the sum of intervals (a burst of exactly perSecond passes).
    if (early > 1e-6) return Math.max(1, Math.ceil(early));
    this.frameTat = due + interval;
    return 0;
  }

  /**
   * Checks the buffer after a topic publish reached this socket. uWS only queues a publish under
   * 16 KiB and writes it at the end of the loop iteration (or with the subscriber's 32nd queued
   * message), so the buffer seen here may lag by up to 31 frames: the check is repeated once that
   * write has happened, or a burst that ends just past the bound would leave the socket open.
   */
  checkBackpressure(): void {
    if (this.overBound()) return;
    recheckLater(this);
  }

  /** Closes the socket with 1013 if it holds more than the bound; true if it is closed. */
  overBound(): boolean {
    if (this.closed || !this.ws) return true;
    if (this.ws.getBufferedAmount() <= this.maxBufferedBytes) return false;
    this.close(CloseCodes.slow_consumer, 'slow consumer');
    return true;
  }

  /** Replay pacing: the replay writes while the buffer is at most half the bound. */
  hasRoom(): boolean {
    return !this.closed && !!this.ws && this.ws.getBufferedAmount() <= this.maxBufferedBytes / 2;
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

  private drainWaiters?: Set<() => void>;

  /** uWS's drain handler: some of the buffer was written. */
  onDrain(): void {
    if (this.drainWaiters && this.hasRoom()) for (const wake of [...this.drainWaiters]) wake();
  }

  /**
   * Resolves once there is room again (or the socket is closed). A client that takes nothing for
   * `stallMs` is a slow consumer: closed with 1013.
   */
  drained(stallMs: number): Promise<void> {
    if (this.hasRoom() || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      let last = this.ws!.getBufferedAmount();
      const wake = () => {
        clearInterval(timer);
        this.drainWaiters?.delete(wake);
        resolve();
      };
      const timer = setInterval(this.guarded(() => {
        if (this.closed || this.hasRoom()) return wake();
        const now = this.ws!.getBufferedAmount();
        if (now >= last) {
          this.close(CloseCodes.slow_consumer, 'slow consumer');
          return wake();
        }
        last = now;
      }), stallMs);
      (this.drainWaiters ??= new Set()).add(wake);
    });
  }

  cork(fn: () => void): void {
    if (this.closed || !this.ws) return;
    this.ws.cork(fn);
  }

  close(code: number, reason: string): void {
    if (this.closed || !this.ws) return;
    this.closed = true;
    this.clearTimers();
    if (code === CloseCodes.slow_consumer) metrics.backpressureClose();
    this.ws.end(code, reason);
  }

  /** This socket's place on the process's token clock (the next warning or the close at exp). */
  private clockEntry?: ClockEntry;
  /** What the clock's next entry is for: the `auth.expiring` warning, then the close at `exp`. */
  private clockStage: 'warn' | 'expire' = 'warn';

  /**
   * Arms the token lifetime: `auth.expiring` ahead of `exp` (a minute, or a fifth of the remaining
   * time when shorter), then close with 4001 at `exp` unless `auth.refresh` moved it.
   */
  extendUntil(expiresAt: Date): void {
    this.expiresAt = expiresAt;
    this.clearTimers();
    if (this.closed) return;
    const exp = expiresAt.getTime();
    const now = Date.now();
    const lead = Math.min(60_000, Math.floor((exp - now) / 5));
    this.clockStage = 'warn';
    this.clockEntry = tokenClock.schedule(Math.max(now, exp - lead), this);
  }

  /** The token clock: the warning is due, or the token has expired. Behind the guard (1011 on a throw). */
  due(): void {
    try {
      if (this.clockStage === 'warn') {
        this.sendFrame('auth.expiring', { expires_at: this.expiresAt.toISOString() });
        this.clockStage = 'expire';
        this.clockEntry = tokenClock.schedule(this.expiresAt.getTime(), this);
      } else {
        this.close(CloseCodes.unauthenticated, 'token_expired');
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** `fn` behind the gateway's guard: an exception closes this socket (1011), nothing else. */
  guarded(fn: () => void): () => void {
    return guard(this.rootLog, 'connection timer', fn, (error) => this.fail(error));
  }

  clearTimers(): void {
    tokenClock.cancel(this.clockEntry);
    this.clockEntry = undefined;
  }

  /** The socket's close handler ran: it can no longer be touched. */
  markClosed(): void {
    this.closed = true;
    this.clearTimers();
  }
}

/**
 * Sockets to look at again once uWS has written what it queued in this loop iteration. uWS does
 * that in its libuv check handle, which runs before Node's setImmediate callbacks (it is started
 * later, and libuv runs the newest check handle first); a look that came too early would only
 * find the socket within bounds, never close one wrongly. One immediate serves every socket.
 */
const recheck = new Set<Connection>();

function recheckLater(connection: Connection): void {
  if (recheck.size === 0) {
    setImmediate(() => {
      const due = [...recheck];
      recheck.clear();
      for (const c of due) {
        try {
          c.overBound();
        } catch (error) {
          c.fail(error);
        }
      }
    });
  }
  recheck.add(connection);
}
