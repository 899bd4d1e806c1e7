import { metrics } from '../metrics/index.js';
import type { RunEmitter, RunEvent } from './run-emitter.js';
import { wellFormed } from './text.js';

/**
 * Coalesces streamed text into `message_delta` events: a delta is written when 50 ms have passed
 * since the last one or 512 characters are waiting, and on flush(). Fewer, larger events keep the
 * log and the sockets light without visible latency.
 */
export class DeltaCoalescer {
  private pending = '';
  private lastFlush = 0;
  private readonly startedAt = performance.now();
  text = '';

  constructor(
    private readonly emitter: RunEmitter,
    private readonly messageId: string,
    private readonly intervalMs = 50,
    private readonly maxChars = 512,
  ) {}

  /** A high surrogate that ended the last chunk: its pair may open the next one. */
  private split = '';

  /**
   * The answer's text that earlier attempts of this answer already stored (a parked run resumed):
   * the text goes on from it, and the final message holds all of it.
   */
  continueFrom(text: string): void {
    this.text = text;
  }

  async push(delta: string): Promise<void> {
    if (!delta) return;
    if (!this.text) metrics.firstDelta((performance.now() - this.startedAt) / 1000);
    // Text a model streams may split a surrogate pair between chunks, or hold a lone one (Postgres
    // cannot store that): pairs are joined again and lone halves become U+FFFD.
    let text = this.split + delta;
    this.split = '';
    if (/[\ud800-\udbff]$/.test(text)) {
      this.split = text.slice(-1);
      text = text.slice(0, -1);
    }
    text = wellFormed(text);
    if (!text) return;
    this.pending += text;
    this.text += text;
    if (this.pending.length >= this.maxChars || Date.now() - this.lastFlush >= this.intervalMs) await this.write();
  }

  /**
   * The text not yet written, as the delta event to write with the run's last events; the
   * coalescer no longer holds it.
   */
  takePending(): RunEvent[] {
    this.absorbSplit();
    if (!this.pending) return [];
    const delta = this.pending;
    this.pending = '';
    return [{ type: 'message_delta', payload: { message_id: this.messageId, delta } }];
  }

  /** The text is ending: a high surrogate still waiting for its pair is a lone one (U+FFFD). */
  private absorbSplit(): void {
    if (!this.split) return;
    const lone = wellFormed(this.split);
    this.split = '';
    this.pending += lone;
    this.text += lone;
  }

  /** Writes what is pending; the text has ended here (a model step's end), so a held half goes too. */
  async flush(): Promise<void> {
    this.absorbSplit();
    await this.write();
  }

  /** Writes what is pending, keeping a held high surrogate for its pair in the next chunk. */
  private async write(): Promise<void> {
    if (!this.pending) return;
    const delta = this.pending;
    this.pending = '';
    this.lastFlush = Date.now();
    try {
      await this.emitter.emit('message_delta', { message_id: this.messageId, delta });
    } catch (error) {
      this.pending = delta + this.pending; // not stored: still owed to the log
      throw error;
    }
  }
}
