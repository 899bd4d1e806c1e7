/**
 * What the link does after a connection ended, and the status it reports meanwhile. The verdict
 * on the end (refusals.ts) says: reconnect after a backoff delay (at least what the server asked
 * for), reconnect at once with a fresh token, or stop. A second refresh verdict with no session in
 * between means the new token fails too: the link stops. An attempt that ended before the server
 * read its token makes the next one send the token the other way (handshake.ts). A retry that
 * waits is made at once when the network comes back (the page's `online` event). How a connection
 * is made is link.ts, which extends this.
 */
import type { ErrorPayload, SessionReadyPayload } from '../frames.js';
import { Backoff } from './backoff.js';
import type { ConversationError } from './errors.js';
import { Handshakes, type Transport } from './handshake.js';
import { judge, judgeBeforeUpgrade, type SocketEnd } from './refusals.js';
import type { HttpRefusal, InboundFrame, WebSocketLike } from './socket.js';
import type { ConnectionStatus, ConversationClientOptions, Refusal, StatusDetail } from './types.js';

export interface LinkHooks {
  /** `session.ready`: the socket carries requests from now on. */
  ready(session: SessionReadyPayload): void;
  /** Every frame after `session.ready`. */
  frame(frame: InboundFrame): void;
  /** The socket is gone (whatever happens next): requests on it got no answer. `end`: its close code and reason, if it had any. */
  lost(end?: { code: number; reason: string }): void;
  status(status: ConnectionStatus, detail: StatusDetail): void;
  /** The link stopped: a new connection would be refused the same way. */
  refused(refusal: Refusal): void;
  error(error: ConversationError): void;
}

/** One connection attempt: its socket and what it learned before it ended. */
export interface Attempt {
  socket: WebSocketLike;
  transport: Transport;
  /** The upgrade succeeded (`open`): the server has read the token. */
  opened?: boolean;
  ready: boolean;
  http?: HttpRefusal;
  /** An `error` frame before session.ready: the refusal that the close will confirm. */
  refusal?: ErrorPayload;
  timer?: ReturnType<typeof setTimeout>;
}

export abstract class ReconnectPolicy {
  protected readonly backoff: Backoff;
  protected readonly handshakes: Handshakes;
  private current: ConnectionStatus = 'idle';
  /** Set only while a retry is waiting (an `online` event may cut that wait short). */
  private retryTimer?: ReturnType<typeof setTimeout>;
  /** Refresh verdicts in a row without a session: a second one means the new token fails too. */
  protected refreshes = 0;
  /** The network came back: retry now instead of at the end of the backoff delay. Only while
   * waiting for a retry; during a handshake it would start a second socket beside the first. */
  protected readonly onOnline = () => {
    if (this.retryTimer === undefined || this.finished) return;
    this.clearRetry();
    void this.open();
  };

  constructor(protected readonly options: ConversationClientOptions, protected readonly hooks: LinkHooks) {
    this.backoff = new Backoff(options.backoff);
    this.handshakes = new Handshakes(options);
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  /** Closed or stopped: nothing reconnects until start(). */
  get finished(): boolean {
    return this.current === 'closed' || this.current === 'stopped';
  }

  /** Opens the next connection, in place of the current one if there is one. */
  protected abstract open(): Promise<void>;

  /**
   * A connection ended with `end`: its requests are lost and, unless the link is finished, the
   * verdict on the end decides what comes next. `attempt`: what it learned before it ended (none:
   * the ticket request was refused).
   */
  protected afterEnd(attempt: Attempt | undefined, end: SocketEnd): void {
    this.hooks.lost(end.kind === 'close' ? { code: end.code, reason: end.reason } : undefined);
    if (this.finished) return;
    const http: SocketEnd | undefined = attempt?.http && { kind: 'http', ...attempt.http };
    // Before the upgrade, with no refusal to read (or a head too large): the server never read the token.
    const verdict = attempt && !attempt.opened && (!http || attempt.http!.status === 431)
      ? judgeBeforeUpgrade(http ?? end, attempt.transport === 'subprotocol', this.handshakes.switchFrom(attempt.transport))
      : judge(http ?? end);
    const closeCode = end.kind === 'close' ? end.code : undefined;
    const httpStatus = attempt?.http?.status ?? (end.kind === 'http' ? end.status : undefined);
    if (verdict.action === 'stop' || (verdict.action === 'refresh' && this.refreshes >= 1)) {
      return this.stop({ code: verdict.code ?? 'unauthenticated', message: verdict.message ?? 'Refused.', closeCode, httpStatus });
    }
    if (verdict.action === 'refresh') {
      this.refreshes += 1;
      this.setStatus('reconnecting', { attempt: this.backoff.attempts, delayMs: 0, code: verdict.code, message: verdict.message, closeCode });
      if (!this.finished) void this.open(); // a status listener may have closed the client
      return;
    }
    this.retryLater({ code: verdict.code, message: verdict.message, closeCode }, verdict.atLeastMs);
  }

  protected retryLater(detail: Omit<StatusDetail, 'attempt'>, atLeastMs = 0): void {
    const delayMs = this.backoff.next(atLeastMs);
    this.setStatus('reconnecting', { ...detail, attempt: this.backoff.attempts, delayMs });
    // A status listener may have closed the client: close() is final.
    if (this.finished) return;
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.open();
    }, delayMs);
  }

  protected clearRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  protected stop(refusal: Refusal): void {
    this.stopTimers();
    this.setStatus('stopped', { attempt: this.backoff.attempts, code: refusal.code, message: refusal.message, closeCode: refusal.closeCode });
    this.hooks.refused(refusal);
  }

  /** Clears every timer: the waiting retry (clearRetry) and the link's own. */
  protected abstract stopTimers(): void;

  protected setStatus(status: ConnectionStatus, detail: Partial<StatusDetail>): void {
    this.current = status;
    this.hooks.status(status, { attempt: 0, ...detail });
  }
}
