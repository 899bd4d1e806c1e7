/**
 * The one place tests wait (uvu has no timeouts): `waitFor` polls a condition, `within` puts a
 * deadline on one promise, `Gate` is a promise opened by hand, and `sleep` is a fixed wait for the
 * few places where time passing is itself the point (a threshold or lifetime to pass, a window in
 * which nothing may happen, a pace to keep). Every caller of `sleep` says which, beside the call;
 * anything that can be awaited as an event (a frame, a log line, a row, a metric) is awaited instead.
 * Polling is not synchronisation: it only observes.
 */

/**
 * Resolves once `predicate` returns true, asking every `everyMs`; rejects after `timeoutMs` naming
 * `message` (a function is called then, so it can tell the last state seen), or with the error the
 * predicate throws.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: string | (() => string) = 'condition',
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof message === 'function' ? message() : message}`);
    await sleep(everyMs);
  }
}

/** Resolves after `ms` (at once for 0 or less). Not a way to wait for something: see above. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Settles like `promise`, or rejects after `timeoutMs` (a deadline for a single await). */
export function within<T>(promise: Promise<T>, timeoutMs: number, message = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${message}`)), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A promise the test opens by hand. */
export class Gate {
  readonly promise: Promise<void>;
  opened = false;
  private release!: () => void;

  constructor() {
    this.promise = new Promise<void>((resolve) => (this.release = resolve));
  }

  open(): void {
    this.opened = true;
    this.release();
  }
}
