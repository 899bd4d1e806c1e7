/**
 * A circuit breaker in front of the LLM provider, one per worker process.
 *
 *   closed     every call goes through; `failureThreshold` provider failures in a row open it.
 *   open       calls are refused (the turn fails fast with llm_unavailable) for `cooldownMs`.
 *   half-open  after the cool-down, one trial call goes through while the rest are refused;
 *              its success closes the breaker, its failure opens it for another cool-down.
 *
 * The caller decides what counts: `failure()` only for provider failures (5xx/429 after the SDK's
 * retries, connection errors, timeouts), `success()` when the provider answered, and `release()`
 * for anything else (a user cancel, a tool error), which changes nothing but frees a trial slot.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive provider failures that open the breaker. @defaultValue 5 */
  failureThreshold?: number;
  /** How long the breaker stays open before a trial call. @defaultValue 30000 */
  cooldownMs?: number;
  /** Clock, for tests. @defaultValue Date.now */
  now?: () => number;
}

export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt = 0;
  private current: BreakerState = 'closed';
  private trialInFlight = false;

  constructor(options: CircuitBreakerOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? 5);
    this.cooldownMs = Math.max(0, options.cooldownMs ?? 30_000);
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) this.current = 'half-open';
    return this.current;
  }

  /** Milliseconds until an open breaker lets a trial call through (0 when not open). */
  retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.openedAt + this.cooldownMs - this.now()) : 0;
  }

  /**
   * Asks to make one provider call. False: refuse it without calling the provider. True: call,
   * then report the outcome with exactly one of success(), failure() or release().
   */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
    this.current = 'closed';
  }

  failure(): void {
    this.trialInFlight = false;
    this.failures++;
    // A late failure of a call made before the breaker opened does not extend the cool-down.
    if (this.current === 'open') return;
    if (this.current === 'half-open' || this.failures >= this.threshold) {
      this.current = 'open';
      this.openedAt = this.now();
    }
  }

  /** The call ended in a way that says nothing about the provider (cancelled, not a provider error). */
  release(): void {
    this.trialInFlight = false;
  }
}
