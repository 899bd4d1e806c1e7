import { metrics } from '../metrics/index.js';
import type { RunEmitter, RunEvent } from './run-emitter.js';
import { ticksEvery, type DeltaTicks } from './delta-ticks.js';
import { wellFormed } from './text.js';

/**
 * Coalesces streamed text into `message_delta` events by time: the text is cut into a delta at
 * most once per interval (50 ms), on the process's clock (./delta-ticks.ts, so that every run's
 * deltas of one tick are stored in one batch), and on flush() at a model step's end; what is left
 * at the run's end goes with its last write (takePending). The first text goes at once (a user
 * waits for it), and so does text that comes after a pause of an interval or more.
 *
 * Writes never overlap and never wait for each other in the model's stream: push() returns at
 * once. Text that arrives while a write is in flight waits for the next tick; a tick that comes
 * while a write is in flight cuts its delta all the same, and the deltas cut meanwhile are written
 * together (one transaction) when that write returns. So the number of deltas follows from the
 * time the text flows, whatever the write latency: a busy server does not write more events per
 * turn, nor longer ones.
 *
 * A write that fails puts its deltas back in front of the rest (nothing is lost or reordered),
 * stops the cutting, and is thrown by the next push(), flush() or settle().
 */
export class DeltaCoalescer {
  /** Text since the last cut. */
  private pending = '';
  /** Deltas cut and not yet written (a write was in flight), in order. */
  private cut: string[] = [];
  /** The write in flight. */
  private writing?: Promise<void>;
  /** When the last delta was cut (the clock's time, a tick's for a tick's cut). */
  private lastCut = -Infinity;
  /** A write that failed; its deltas are back in `cut`. */
  private failure?: { error: unknown };
  /** settle() was called: nothing more is cut or written here; the run's last write takes the rest. */
  private stopped = false;
  private readonly ticks: DeltaTicks;
  private readonly onTick = (at: number): void => this.tick(at);
  private readonly startedAt = performance.now();
  text = '';

  constructor(
    private readonly emitter: RunEmitter,
    private readonly messageId: string,
    private readonly intervalMs = 50,
  ) {
    this.ticks = ticksEvery(intervalMs);
  }

  /** A high surrogate that ended the last chunk: its pair may open the next one. */
  private split = '';

  /**
   * The answer's text that earlier attempts of this answer already stored (a parked run resumed):
   * the text goes on from it, and the final message holds all of it.
   */
  continueFrom(text: string): void {
    this.text = text;
  }

  /** Takes a chunk of the model's text; returns at once (a failed write is thrown here). */
  push(delta: string): void {
    const quiet = !this.pending;
    this.take(delta);
    this.throwFailure();
    if (this.stopped || !this.pending) return;
    const now = this.ticks.now();
    // At once: the first text, or text after a pause (nothing pending, nothing in flight, the last
    // delta an interval ago or more, no tick running late). Otherwise the next tick cuts it.
    if (quiet && !this.writing && this.cut.length === 0 && now - this.lastCut >= this.intervalMs && !this.ticks.overdue(now)) {
      this.cutAt(now);
      this.write();
    } else {
      this.ticks.wait(this.onTick);
    }
  }

  /** Adds a chunk to the text (kept even when a failed write is thrown: it is owed to the log like the rest). */
  private take(delta: string): void {
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
  }

  /** The pending text becomes a delta of its own, cut at `at`. */
  private cutAt(at: number): void {
    this.cut.push(this.pending);
    this.pending = '';
    this.lastCut = at;
  }

  private tick(at: number): void {
    if (this.stopped || this.failure || !this.pending) return;
    if (at - this.lastCut < this.intervalMs) {
      // The first tick after a delta that went at once (off the clock): a whole interval has not passed.
      this.ticks.wait(this.onTick);
      return;
    }
    this.cutAt(at);
    if (!this.writing) this.write();
  }

  /** Writes every delta cut so far (one event each, one transaction); the next write starts when it returns. */
  private write(): void {
    const deltas = this.cut;
    this.cut = [];
    const payloads = deltas.map((delta) => ({ message_id: this.messageId, delta }));
    let written: Promise<void>;
    try {
      written =
        payloads.length === 1
          ? this.emitter.emit('message_delta', payloads[0]!)
          : this.emitter.emitAll(payloads.map((payload): RunEvent => ({ type: 'message_delta', payload })));
    } catch (error) {
      written = Promise.reject(error);
    }
    this.writing = written.then(
      () => {
        this.writing = undefined;
        if (this.cut.length > 0 && !this.stopped) this.write();
      },
      (error: unknown) => {
        this.writing = undefined;
        this.cut = [...deltas, ...this.cut]; // not stored: still owed to the log, first
        this.failure ??= { error };
        this.ticks.cancel(this.onTick);
      },
    );
  }

  /** Waits until no write is in flight (one that returns may start the next; stopped, it does not). */
  private async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /**
   * The text not yet written, as the delta events to write with the run's last events (one per
   * cut, then the rest); the coalescer no longer holds it. Call settle() first: no write may be
   * in flight.
   */
  takePending(): RunEvent[] {
    this.absorbSplit();
    this.stopped = true;
    this.ticks.cancel(this.onTick);
    const deltas = this.pending ? [...this.cut, this.pending] : this.cut;
    this.cut = [];
    this.pending = '';
    return deltas.map((delta) => ({ type: 'message_delta', payload: { message_id: this.messageId, delta } }));
  }

  /**
   * The text has ended for now (a model step's end before its tool calls): writes everything
   * pending, a held half too, once the write in flight has returned.
   */
  async flush(): Promise<void> {
    this.absorbSplit();
    await this.idle();
    this.throwFailure();
    this.ticks.cancel(this.onTick);
    if (this.pending) this.cutAt(this.ticks.now());
    if (this.cut.length === 0) return;
    this.write();
    await this.idle();
    this.throwFailure();
  }

  /**
   * The text has ended (the run's last write comes next): stops cutting, waits for the write in
   * flight, and throws a failed write's error. What is left is takePending()'s. Safe to call twice.
   */
  async settle(): Promise<void> {
    this.stopped = true;
    this.ticks.cancel(this.onTick);
    await this.idle();
    this.throwFailure();
  }

  private throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }

  /** The text is ending: a high surrogate still waiting for its pair is a lone one (U+FFFD). */
  private absorbSplit(): void {
    if (!this.split) return;
    const lone = wellFormed(this.split);
    this.split = '';
    this.pending += lone;
    this.text += lone;
  }
}
