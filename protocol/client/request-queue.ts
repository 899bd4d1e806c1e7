/**
 * How requests reach the server: in the order they were made (requests.ts keeps them), at most
 * `maxInFlight` on the wire at once, refusals that say "wait" waited out and retried, and no frame
 * larger than the server reads (frame-limit.ts). Each of these is a way the server would otherwise
 * refuse or close: more than MAX_QUEUED_FRAMES (32) waiting on a connection are refused
 * `rate_limited`, and past BAD_FRAME_LIMIT refusals the socket is closed with 4008; a frame over
 * MAX_FRAME_BYTES closes it with 1009.
 */
import type { ClientFrameType, ClientPayloads } from '../frames.js';
import { ConversationError } from './errors.js';
import { FrameLimit } from './frame-limit.js';
import { RequestBook, type PendingRequest } from './requests.js';
import type { ConversationClientOptions } from './types.js';

/** Requests that may be written again after a drop without changing their effect. */
const RESENDABLE: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  'message.send', 'thread.subscribe', 'thread.unsubscribe', 'run.cancel', 'ping',
  'thread.list', 'thread.get', 'thread.history', 'search', 'thread.update',
]);

export interface QueueHooks {
  /** Writes a frame on the open socket; false when there is none. */
  write(text: string): boolean;
  /** Whether a session is open (requests flow). */
  open(): boolean;
  /** A request timed out on its own (the outbox changed). */
  timedOut(): void;
}

export class RequestQueue {
  readonly book = new RequestBook();
  private readonly limit: FrameLimit;
  /** Requests on the wire at once: back to one after a rate_limited, then one more per answer. */
  private window: number;
  /** A rate_limited refusal holds the whole queue until then (the limit is the connection's). */
  private pausedUntil = 0;
  private pauseTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly options: ConversationClientOptions, private readonly hooks: QueueHooks) {
    this.limit = new FrameLimit(this.book, options.maxFrameBytes);
    this.window = this.maxInFlight;
  }

  /** Queues a request; it goes out as soon as the session and the window allow. */
  add(type: ClientFrameType, payload: () => ClientPayloads[ClientFrameType], options: { timeoutMs?: number; urgent?: boolean }): Promise<unknown> {
    const { request, promise } = this.book.add({
      type,
      payload,
      resend: RESENDABLE.has(type),
      urgent: options.urgent ?? false,
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs ?? 15_000,
    });
    // Too large for the server: refused now, offline too, instead of a 1009 close later.
    if (this.limit.admit(request)) this.pump();
    return promise;
  }

  /** A session is ready: the window opens fully and the queue flows. */
  opened(): void {
    this.window = this.maxInFlight;
    this.pump();
  }

  /** The `ack` (or `pong`) of a request; false when no request waits for it. */
  answer(id: string, payload: unknown): boolean {
    if (!this.book.settle(id, undefined, payload)) return false;
    this.answered();
    return true;
  }

  /** The `error` of a request, waited out and retried when it says so; false when no request waits for it. */
  refuse(id: string, failure: ConversationError): boolean {
    const request = this.book.get(id);
    if (!request || request.state !== 'sent') return false;
    if (!this.retryLater(request, failure)) {
      this.book.settle(request.id, failure);
      this.answered();
    }
    return true;
  }

  /**
   * The socket is gone: requests on the wire go back to the queue, or fail. `tooLarge`: it closed
   * with 1009, and the request that was too large is rejected instead of resent.
   */
  lost(tooLarge?: { reason: string }): void {
    if (tooLarge) this.limit.closedTooLarge(tooLarge.reason);
    this.book.disconnected();
  }

  rejectAll(error: ConversationError): void {
    clearTimeout(this.pauseTimer);
    this.book.rejectAll(error);
  }

  private get maxInFlight(): number {
    return Math.max(1, this.options.maxInFlight ?? 16);
  }

  /** Writes queued requests, in order, while a session is open and the window has room. */
  private pump(): void {
    if (!this.hooks.open() || Date.now() < this.pausedUntil) return;
    while (this.book.inFlight < this.window) {
      const request = this.book.next();
      if (!request) return;
      const frame = this.limit.admit(request);
      if (!frame) continue;
      if (!this.hooks.write(frame.text)) return;
      this.book.sent(request, frame.bytes, (late) => {
        this.book.settle(late.id, new ConversationError('request_timeout', `No answer to ${late.type} within ${late.timeoutMs} ms.`, true));
        this.hooks.timedOut();
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
}
