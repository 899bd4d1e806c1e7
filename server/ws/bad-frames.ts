/**
 * One connection's count of bad frames (invalid, binary, refused for rate): past BAD_FRAME_LIMIT
 * within a 10 s window the socket is closed with 4008 (./frame-intake.ts).
 */
const WINDOW_MS = 10_000;

export class BadFrameCounter {
  private count = 0;
  private since = 0;

  /** Counts one bad frame; true once more than `limit` arrived within the window (close the socket). */
  strike(limit: number): boolean {
    const now = Date.now();
    if (now - this.since > WINDOW_MS) {
      this.count = 0;
      this.since = now;
    }
    return ++this.count > limit;
  }
}
