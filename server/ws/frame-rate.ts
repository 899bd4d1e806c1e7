/**
 * One connection's inbound frame rate (RATE_LIMIT_FRAMES_PER_SEC) as a GCRA: a burst of up to
 * `perSecond` frames, then one every 1000/perSecond ms. Synchronous, so frames keep their order;
 * a refused frame is not parsed (./frame-intake.ts).
 */
export class FrameRate {
  /** When the next frame is due (GCRA's theoretical arrival time, performance.now() ms). */
  private tat = 0;

  /** Admits one frame under `perSecond` (0: no limit). Returns 0 when admitted, else the ms until a frame would be. */
  admit(perSecond: number): number {
    if (perSecond <= 0) return 0;
    const now = performance.now();
    const interval = 1000 / perSecond;
    const due = Math.max(this.tat, now);
    const early = due + interval - now - 1000;
    // The epsilon absorbs float error in the sum of intervals (a burst of exactly perSecond passes).
    if (early > 1e-6) return Math.max(1, Math.ceil(early));
    this.tat = due + interval;
    return 0;
  }
}
