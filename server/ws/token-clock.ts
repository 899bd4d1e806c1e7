/**
 * One timer for the token lifetimes of every socket in the process. A Node timer costs a few
 * hundred bytes and every socket needs two (the `auth.expiring` warning and the close at `exp`);
 * at hundreds of thousands of mostly idle sockets that is a large share of the gateway's memory.
 * Here a socket holds one small entry in a min-heap ordered by due time, and one setTimeout is armed
 * for the earliest entry. Entries know their place in the heap, so a socket that closes (or
 * refreshes its token) takes its entry out at once and nothing of it is kept until its old `exp`.
 */

/** What comes due: its `due()` is called at the entry's time. */
export interface ClockOwner {
  due(): void;
}

export interface ClockEntry {
  at: number;
  /** Position in the heap; -1 once fired or cancelled. */
  index: number;
  /** An object with a method rather than a closure: a closure per socket would cost more than the entry. */
  owner: ClockOwner;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days); longer waits re-arm when closer. */
const MAX_DELAY = 2_000_000_000;

export class TokenClock {
  private readonly heap: ClockEntry[] = [];
  private timer?: NodeJS.Timeout;
  private armedAt = Infinity;

  /** Calls `owner.due()` at `at` (epoch ms) unless the entry is cancelled first. */
  schedule(at: number, owner: ClockOwner): ClockEntry {
    const entry: ClockEntry = { at, index: this.heap.length, owner };
    this.heap.push(entry);
    this.up(entry.index);
    if (at < this.armedAt) this.arm();
    return entry;
  }

  /** Takes the entry out; safe to call twice, or after it fired. */
  cancel(entry: ClockEntry | undefined): void {
    if (!entry || entry.index < 0) return;
    this.removeAt(entry.index);
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
    this.armedAt = next.at;
    this.timer = setTimeout(() => this.run(), Math.min(MAX_DELAY, Math.max(0, next.at - Date.now())));
    this.timer.unref();
  }

  private run(): void {
    const now = Date.now();
    for (let next = this.heap[0]; next && next.at <= now; next = this.heap[0]) {
      this.removeAt(0);
      // One owner's failure (it closes its own socket) must not stop the others coming due.
      try {
        next.owner.due();
      } catch {
        // The owner guards its own callback (see TokenLifetime.due); nothing more to do here.
      }
    }
    this.arm();
  }

  private removeAt(index: number): void {
    const heap = this.heap;
    const removed = heap[index]!;
    removed.index = -1;
    const last = heap.pop()!;
    if (index === heap.length) return;
    heap[index] = last;
    last.index = index;
    this.down(index);
    this.up(last.index);
  }

  private up(index: number): void {
    const heap = this.heap;
    for (let i = index; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= heap[i]!.at) break;
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
      if (left < heap.length && heap[left]!.at < heap[smallest]!.at) smallest = left;
      if (right < heap.length && heap[right]!.at < heap[smallest]!.at) smallest = right;
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
    second.index = a;
    first.index = b;
  }
}

/** The process's clock (every gateway in the process shares it). */
export const tokenClock = new TokenClock();
