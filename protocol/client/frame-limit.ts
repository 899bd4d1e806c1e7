/**
 * The largest frame the server reads, as far as this client knows, and how a request measures
 * against it. A frame over the server's MAX_FRAME_BYTES closes the socket with 1009, and resending
 * it after the reconnect would close it again, for ever: a request too large is rejected with
 * `too_large` instead, before it is written (offline too), and after a 1009 close instead of
 * being resent.
 */
import { parseTooLargeReason } from '../codes.js';
import { ConversationError } from './errors.js';
import type { PendingRequest, RequestBook } from './requests.js';

/** The server's MAX_FRAME_BYTES unless told otherwise. */
const DEFAULT_MAX_FRAME_BYTES = 65_536;

/** A request's frame as written: its text and its UTF-8 size. */
export interface FrameText { text: string; bytes: number }

export class FrameLimit {
  /** Lowered by a 1009 close that names the server's limit. */
  private max: number;

  constructor(private readonly book: RequestBook, max = DEFAULT_MAX_FRAME_BYTES) {
    this.max = max;
  }

  /** The request's frame, or undefined when it is over the limit (the request is rejected then). */
  admit(request: PendingRequest): FrameText | undefined {
    const text = JSON.stringify({ type: request.type, id: request.id, payload: request.payload() });
    const bytes = utf8Length(text);
    if (bytes <= this.max) return { text, bytes };
    this.reject(request, bytes);
    return undefined;
  }

  /**
   * The socket closed with 1009: a frame on the wire was over the server's limit, which the reason
   * names (`frame over N bytes`); every request over it, waiting or on the wire, is rejected. Without
   * a readable limit, the largest request on the wire is taken to be the one.
   */
  closedTooLarge(reason: string): void {
    const onWire = this.book.all().filter((r) => r.state === 'sent');
    const limit = parseTooLargeReason(reason) ?? NaN;
    let found = false;
    if (Number.isInteger(limit) && limit > 0) {
      this.max = Math.min(this.max, limit);
      found = this.book.all().filter((r) => !this.admit(r)).some((r) => r.state === 'sent');
    }
    const largest = onWire.sort((a, b) => b.bytes - a.bytes)[0];
    if (!found && largest && this.book.get(largest.id)) this.reject(largest, largest.bytes);
  }

  private reject(request: PendingRequest, bytes: number): void {
    this.book.settle(request.id, new ConversationError('too_large', `The ${request.type} frame is ${bytes} bytes of UTF-8; the server reads at most ${this.max}.`));
  }
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
