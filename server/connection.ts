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

export interface ConnectionData {
  connection: Connection;
}

export class Connection {
  ws?: WebSocket<ConnectionData>;
  closed = false;
  /** Thread ids this socket follows; the fan-out holds the per-thread state. */
  readonly threads = new Set<string>();
  expiresAt: Date;

  constructor(
    readonly id: string,
    readonly principal: Principal,
    readonly log: Logger,
    private readonly maxBufferedBytes: number,
  ) {
    this.expiresAt = principal.expiresAt;
  }

  get owner() {
    return { workspaceId: this.principal.workspaceId, userId: this.principal.userId };
  }

  /** Sends one text frame. Returns false if the socket is closed or was just cut off as too slow. */
  send(frame: string): boolean {
    if (this.closed || !this.ws) return false;
    const status = this.ws.send(frame, false);
    // 2 = dropped by uWS's own limit: the client would miss a frame, so it must not stay connected.
    if (status === 2 || this.ws.getBufferedAmount() > this.maxBufferedBytes) {
      this.close(CloseCodes.slow_consumer, 'slow consumer');
      return false;
    }
    return true;
  }

  sendFrame(type: string, payload: unknown, id?: string): boolean {
    return this.send(JSON.stringify(id === undefined ? { type, payload } : { type, id, payload }));
  }

  sendError(id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number): boolean {
    const payload = retryAfterMs === undefined ? { code, message } : { code, message, retry_after_ms: retryAfterMs };
    return this.sendFrame('error', payload, id);
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

  /** Checks the buffer after a topic publish reached this socket. */
  checkBackpressure(): void {
    if (!this.closed && this.ws && this.ws.getBufferedAmount() > this.maxBufferedBytes) {
      this.close(CloseCodes.slow_consumer, 'slow consumer');
    }
  }

  cork(fn: () => void): void {
    if (this.closed || !this.ws) return;
    this.ws.cork(fn);
  }

  close(code: number, reason: string): void {
    if (this.closed || !this.ws) return;
    this.closed = true;
    this.clearTimers();
    this.ws.end(code, reason);
  }

  private warnTimer?: NodeJS.Timeout;
  private expireTimer?: NodeJS.Timeout;

  /**
   * Arms the token-lifetime timers: `auth.expiring` ahead of `exp` (a minute, or a fifth of the
   * remaining time when shorter), then close with 4001 at `exp` unless `auth.refresh` moved it.
   */
  extendUntil(expiresAt: Date): void {
    this.expiresAt = expiresAt;
    this.clearTimers();
    if (this.closed) return;
    const remaining = expiresAt.getTime() - Date.now();
    const lead = Math.min(60_000, Math.floor(remaining / 5));
    // setTimeout overflows past 2^31-1 ms (~24.8 days); such a token is re-armed when it gets closer.
    const cap = 2_000_000_000;
    if (remaining > cap) {
      this.expireTimer = setTimeout(() => this.extendUntil(expiresAt), cap);
      return;
    }
    this.warnTimer = setTimeout(() => {
      this.sendFrame('auth.expiring', { expires_at: expiresAt.toISOString() });
    }, Math.max(0, remaining - lead));
    this.expireTimer = setTimeout(() => this.close(CloseCodes.unauthenticated, 'token expired'), Math.max(0, remaining));
  }

  clearTimers(): void {
    clearTimeout(this.warnTimer);
    clearTimeout(this.expireTimer);
  }

  /** The socket's close handler ran: it can no longer be touched. */
  markClosed(): void {
    this.closed = true;
    this.clearTimers();
  }
}
