/**
 * How requests reach the server: in the order they were made (requests.ts keeps them), at most
 * `maxInFlight` on the wire at once, refusals that say "wait" waited out and retried, and no frame
 * larger than the server reads. Each of these is a way the server would otherwise refuse or close:
 * - more than MAX_QUEUED_FRAMES (32) waiting on a connection are refused `rate_limited`, and past
 *   BAD_FRAME_LIMIT refusals the socket is closed with 4008;
 * - a frame over MAX_FRAME_BYTES closes the socket with 1009, and resending it after the reconnect
 *   would close it again, for ever.
 */
import { parseTooLargeReason } from '../codes.js';
import type { ClientFrameType, ClientPayloads } from '../frames.js';
import { ConversationError } from './errors.js';
import { RequestBook, type PendingRequest } from './requests.js';
import type { ConversationClientOptions } from './types.js';

/** The server's MAX_FRAME_BYTES unless told otherwise. */
const DEFAULT_MAX_FRAME_BYTES = 65_536;

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
  /** The largest frame the server reads, as far as this client knows (lowered by a 1009 close). */
  private frameLimit: number;
  /** Requests on the wire at once: back to one after a rate_limited, then one more per answer. */
  private window: number;
  /** A rate_limited refusal holds the whole queue until then (the limit is the connection's). */
  private pausedUntil = 0;
  private pauseTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly options: ConversationClientOptions, private readonly hooks: QueueHooks) {
    this.frameLimit = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
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
    if (this.fits(request)) this.pump();
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
   * The socket is gone. After a 1009 close, a frame on the wire was over the server's limit, which
   * the reason names (`frame over N bytes`): requests over it are rejected instead of resent.
   * Without a readable limit, the largest request on the wire is taken to be the one.
   */
  lost(tooLarge?: { reason: string }): void {
    if (tooLarge) {
      const onWire = this.book.all().filter((r) => r.state === 'sent');
      const limit = parseTooLargeReason(tooLarge.reason) ?? NaN;
      let found = false;
      if (Number.isInteger(limit) && limit > 0) {
        this.frameLimit = Math.min(this.frameLimit, limit);
        // Every request over the limit now known, waiting or on the wire.
        found = this.book.all().filter((r) => !this.fits(r)).some((r) => r.state === 'sent');
      }
      const largest = onWire.sort((a, b) => b.bytes - a.bytes)[0];
      if (!found && largest && this.book.get(largest.id)) this.rejectTooLarge(largest, largest.bytes);
    }
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
      const text = frameText(request);
      const bytes = utf8Length(text);
      if (bytes > this.frameLimit) {
        this.rejectTooLarge(request, bytes);
        continue;
      }
      if (!this.hooks.write(text)) return;
      this.book.sent(request, bytes, (late) => {
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
}

function frameText(request: PendingRequest): string {
  return JSON.stringify({ type: request.type, id: request.id, payload: request.payload() });
}

/** UTF-8 size of a string, counted without encoding it (a surrogate pair counts 2 + 1 + 1). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) bytes += unit >= 0x800 && (unit < 0xd800 || unit > 0xdfff) ? 2 : 1;
  }
  return bytes;
}
