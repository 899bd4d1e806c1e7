/**
 * A paced writer's wait for room in a socket's buffer (a replay writes while the buffer is at most
 * half the bound): woken by uWS's drain handler, and watched every `stallMs`, so a client that
 * takes nothing for that long is closed as a slow consumer (1013) instead of holding the replay.
 */
import { CloseCodes } from '../../protocol/codes.js';

/** What the wait watches (a Connection). */
export interface PacedSocket {
  readonly closed: boolean;
  readonly ws?: { getBufferedAmount(): number };
  /** The buffer is at most half the bound. */
  hasRoom(): boolean;
  close(code: number, reason: string): void;
  /** `fn` behind the gateway's guard: a throw closes only this socket. */
  guarded(fn: () => void): () => void;
}

export class DrainWait {
  private readonly waiters = new Set<() => void>();

  constructor(private readonly socket: PacedSocket) {}

  /** uWS's drain handler ran: every waiter goes on once there is room. */
  wake(): void {
    if (this.waiters.size > 0 && this.socket.hasRoom()) for (const wake of [...this.waiters]) wake();
  }

  /** Resolves once there is room (or the socket closed); closes a socket that took nothing for `stallMs`. */
  wait(stallMs: number): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve) => {
      let last = socket.ws!.getBufferedAmount();
      const wake = () => {
        clearInterval(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setInterval(socket.guarded(() => {
        if (socket.closed || socket.hasRoom()) return wake();
        const now = socket.ws!.getBufferedAmount();
        if (now >= last) {
          socket.close(CloseCodes.slow_consumer, 'slow consumer');
          return wake();
        }
        last = now;
      }), stallMs);
      this.waiters.add(wake);
    });
  }
}
