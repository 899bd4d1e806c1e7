/**
 * Reconnect delays: exponential backoff with full jitter (a delay drawn uniformly from 0 to
 * min(max, base * 2^attempt)), so that clients dropped together do not come back together.
 */
export interface BackoffOptions {
  /** @defaultValue 500 */
  baseMs?: number;
  /** @defaultValue 30000 */
  maxMs?: number;
  /** A source of uniform numbers in [0, 1) (tests pass a fixed one). @defaultValue Math.random */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt; each call widens the window, up to maxMs. */
  next(atLeastMs = 0): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.max(atLeastMs, Math.floor(this.random() * ceiling));
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
