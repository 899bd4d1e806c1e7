/**
 * One timer for the token lifetimes of every socket in the process. A Node timer costs a few
 * hundred bytes and every socket needs two (the `auth.expiring` warning and the close at `exp`);
 * at hundreds of thousands of mostly idle sockets that is a large share of the gateway's memory.
 * Here a socket's lifetime sits in a min-heap ordered by due time, and one setTimeout is armed for
 * the earliest. The heap holds the owners themselves, which carry their due time and their place
 * in the heap (no entry object per socket), so a socket that closes (or refreshes its token) leaves
 * the heap at once and nothing of it is kept until its old `exp`.
 */

/** What comes due: its `due()` is called at its time. The clock alone writes the two fields. */
export interface ClockEntry {
  /**
   * Due time in ms after the clock's origin: a small integer, which V8 keeps in the object itself
   * where an epoch time in ms would be a separate heap number per socket. The origin moves
   * forward every few days so that it stays small (a token due more than 24 days ahead is boxed).
   */
  clockAt: number;
  /** Position in the heap; -1 when not on the clock. */
  clockIndex: number;
  due(): void;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days); longer waits re-arm when closer. */
const MAX_DELAY = 2_000_000_000;
/** How far the origin may fall behind before it is moved up to now (about 6 days). */
const REBASE_AFTER_MS = 2 ** 29;

export class TokenClock {
  /** Epoch ms that clock times count from. */
  origin = Date.now();
  private readonly heap: ClockEntry[] = [];
  private timer?: NodeJS.Timeout;
  private armedAt = Infinity;

  /** Calls `entry.due()` at `at` (epoch ms) unless it is cancelled first; an entry on the clock is moved. */
  schedule(entry: ClockEntry, at: number): void {
    this.cancel(entry);
    this.rebaseIfOld();
    entry.clockAt = small(Math.round(at - this.origin));
    entry.clockIndex = this.heap.length;
    this.heap.push(entry);
    this.up(entry.clockIndex);
    if (entry.clockAt < this.armedAt) this.arm();
  }

  /** Takes the entry off the clock; safe to call twice, or after it fired. */
  cancel(entry: ClockEntry): void {
    if (entry.clockIndex < 0) return;
    this.removeAt(entry.clockIndex);
    // Nothing left: no timer either. Otherwise the armed timer may now be early; it finds nothing
    // due and re-arms.
    if (this.heap.length === 0) this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    const next = this.heap[0];
    if (!next) {
      this.armedAt = Infinity;
      this.timer = undefined;
      return;
    }
    this.armedAt = next.clockAt;
    this.timer = setTimeout(() => this.run(), Math.min(MAX_DELAY, Math.max(0, this.origin + next.clockAt - Date.now())));
    this.timer.unref();
  }

  /** Moves the origin up to now once it is old, and every entry's time with it. */
  private rebaseIfOld(): void {
    const shift = Date.now() - this.origin;
    if (shift < REBASE_AFTER_MS) return;
    this.origin += shift;
    for (const entry of this.heap) entry.clockAt = small(entry.clockAt - shift);
    this.armedAt -= shift;
  }

  private run(): void {
    this.rebaseIfOld();
    const now = Date.now() - this.origin;
    for (let next = this.heap[0]; next && next.clockAt <= now; next = this.heap[0]) {
      this.removeAt(0);
      // One owner's failure (it closes its own socket) must not stop the others coming due.
      try {
        next.due();
      } catch {
        // The owner guards its own callback (see TokenLifetime.due); nothing more to do here.
      }
    }
    this.arm();
  }

  private removeAt(index: number): void {
    const heap = this.heap;
    const removed = heap[index]!;
    removed.clockIndex = -1;
    const last = heap.pop()!;
    if (index === heap.length) return;
    heap[index] = last;
    last.clockIndex = index;
    this.down(index);
    this.up(last.clockIndex);
  }

  private up(index: number): void {
    const heap = this.heap;
    for (let i = index; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.clockAt <= heap[i]!.clockAt) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(index: number): void {
    const heap = this.heap;
    for (let i = index; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left]!.clockAt < heap[smallest]!.clockAt) smallest = left;
      if (right < heap.length && heap[right]!.clockAt < heap[smallest]!.clockAt) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    const first = heap[a]!;
    const second = heap[b]!;
    heap[a] = second;
    heap[b] = first;
    second.clockIndex = a;
    first.clockIndex = b;
  }
}

/**
 * `n` as V8's small integer when it is one: arithmetic on epoch times gives heap numbers even for
 * whole results, and one stored in a field makes that field a boxed double in every object.
 */
export function small(n: number): number {
  return n >= -0x80000000 && n <= 0x7fffffff ? n | 0 : n;
}

/** The process's clock (every gateway in the process shares it). */
export const tokenClock = new TokenClock();
