/**
 * The clock streamed text is cut on (./delta-coalescer.ts): one per interval for the whole
 * process, ticking on the multiples of the interval, so every run in the process cuts its text at
 * the same moments. The deltas cut at one tick are appended in one synchronous pass, and the event
 * log (group commit) stores them in one batch: one round trip and one transaction per tick for all
 * the runs that stream, instead of one per run spread over the interval.
 *
 * The timer runs only while a listener waits.
 */
export type TickListener = (at: number) => void;

export class DeltaTicks {
  private readonly waiting = new Set<TickListener>();
  private timer?: NodeJS.Timeout;
  /** The tick the timer is armed for. */
  private dueAt = 0;

  constructor(readonly intervalMs: number) {}

  /** The clock's time (ms, monotonic). */
  now(): number {
    return performance.now();
  }

  /** A tick is due and its timer has not fired yet (a busy loop runs it late): text now belongs to it. */
  overdue(now: number): boolean {
    return this.timer !== undefined && now >= this.dueAt - 1;
  }

  /**
   * `listener` is called once, at the next tick, with the tick's time, in the same synchronous
   * pass as every other listener waiting for that tick. Waiting again while waiting changes nothing.
   */
  wait(listener: TickListener): void {
    this.waiting.add(listener);
    this.arm();
  }

  /** `listener` is no longer called (the timer stops when nobody waits). */
  cancel(listener: TickListener): void {
    this.waiting.delete(listener);
    if (this.waiting.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private arm(): void {
    if (this.timer) return;
    const now = this.now();
    this.dueAt = this.intervalMs > 0 ? (Math.floor(now / this.intervalMs) + 1) * this.intervalMs : now;
    this.timer = setTimeout(this.fire, this.dueAt - now);
    // A run that waits for a tick is held by its model stream or its job, not by this timer.
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    // The tick this firing stands for: a timer fires up to a millisecond early or any time late
    // (a busy loop), and a late one stands for the last tick passed, never for one skipped.
    const now = this.now();
    const at = this.intervalMs > 0 ? Math.floor((now + 1) / this.intervalMs) * this.intervalMs : now;
    const due = [...this.waiting];
    this.waiting.clear();
    for (const listener of due) listener(at);
    if (this.waiting.size > 0) this.arm();
  };
}

const clocks = new Map<number, DeltaTicks>();

/** The process's clock ticking every `intervalMs` (0: as soon as possible). */
export function ticksEvery(intervalMs: number): DeltaTicks {
  let clock = clocks.get(intervalMs);
  if (!clock) clocks.set(intervalMs, (clock = new DeltaTicks(intervalMs)));
  return clock;
}
