/**
 * Publish/subscribe between the workers that produce thread events and the gateways that hold the
 * sockets. Messages are opaque strings; delivery is at most once and ordered per channel. Anything
 * missed (e.g. while disconnected) is recovered from the event log, not from the broker.
 */
export interface Broker {
  /**
   * Publishes to every current subscriber of `channel`, in any process. A publish that fails (the
   * broker is unreachable) rejects, and the channel's latest failed message is published again once
   * the connection is back: enough for thread events, since a gateway that receives seq N fills
   * whatever it missed before N from the log.
   */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Calls `handler` for every message on `channel` until the returned function is called.
   * Resolves once the subscription is active: a message published after that is delivered.
   */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;
  /** Resolves when the broker answers; rejects when it is unreachable (readiness checks). */
  ping(): Promise<void>;
  /** Channels this process is subscribed to (metrics, leak tests). */
  readonly channelCount: number;
  /**
   * `listener` runs after a lost connection is back: messages in between may be missing. Returns
   * the function that removes it.
   */
  onReconnect(listener: () => void): () => void;
  /** Safe to call twice. */
  close(): Promise<void>;
}

/** Keeps one set of handlers per channel; the transports only carry messages. */
export class HandlerTable {
  private readonly handlers = new Map<string, Set<(message: string) => void>>();

  /** `onError` hears of a handler that threw (the other handlers still run). */
  constructor(private readonly onError: (error: unknown, channel: string) => void = () => {}) {}

  /** Adds a handler; true when it is the channel's first. */
  add(channel: string, handler: (message: string) => void): boolean {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return first;
  }

  /** Removes a handler; true when the channel has none left. */
  remove(channel: string, handler: (message: string) => void): boolean {
    const set = this.handlers.get(channel);
    if (!set || !set.delete(handler)) return false;
    if (set.size > 0) return false;
    this.handlers.delete(channel);
    return true;
  }

  /**
   * Calls every handler of `channel`. A handler that throws is reported to the table's `onError`
   * and the others still run: one subscriber's bug must not stop delivery to the rest (nor, raised in a
   * connection's event callback, end the process).
   */
  deliver(channel: string, message: string): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const handler of set) {
      try {
        handler(message);
      } catch (error) {
        this.onError(error, channel);
      }
    }
  }

  get channelCount(): number {
    return this.handlers.size;
  }

  /** The channels with a handler. */
  channels(): string[] {
    return [...this.handlers.keys()];
  }
}
