/**
 * Requests in flight per user, on this gateway: at most `limit` of one user's requests (frames of
 * all their sockets and REST calls) run at once; the next ones wait their turn in arrival order,
 * and past `maxWaiting` waiting ones a request is refused. One tenant can then hold at most
 * `limit` of the database pool's connections, whatever it sends.
 */
export class InFlightLimiter {
  private readonly users = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {}

  /**
   * Runs `work` once one of the user's slots is free. Resolves or rejects like `work`; returns
   * undefined without running it when the user already has `maxWaiting` requests waiting (unless
   * `patient`: work the server owes the user, such as the pages of a replay it acked, waits its
   * turn however long the line).
   */
  async run<T>(key: string, work: () => Promise<T>, patient = false): Promise<{ value: T } | undefined> {
    let user = this.users.get(key);
    if (!user) this.users.set(key, (user = { running: 0, waiting: [] }));
    if (user.running >= this.limit) {
      if (user.waiting.length >= this.maxWaiting && !patient) return undefined;
      await new Promise<void>((resolve) => user!.waiting.push(resolve));
    } else {
      user.running++;
    }
    try {
      return { value: await work() };
    } finally {
      // The slot passes straight to the next waiter (running stays the same), or is given back.
      const next = user.waiting.shift();
      if (next) next();
      else if (--user.running === 0) this.users.delete(key);
    }
  }
}
