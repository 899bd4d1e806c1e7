/** Polling waits with their own deadline (uvu has no timeouts). Polling is not synchronisation: it only observes. */

/** Resolves once `predicate` returns true; rejects after `timeoutMs` with `message` (or a default). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
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
