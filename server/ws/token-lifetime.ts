/**
 * A socket's token lifetime: `auth.expiring` ahead of `exp` (a minute, or a fifth of the remaining
 * time when shorter), then a close with 4001 `token_expired` at `exp`, unless `auth.refresh`
 * extended it first. Both moments are entries on the process's one token clock (./token-clock.ts),
 * never a timer per socket.
 */
import { CloseCodes } from '../../protocol/codes.js';
import { tokenClock, type ClockEntry, type ClockOwner } from './token-clock.js';

/** What the lifetime acts on (its Connection). */
export interface TokenHolder {
  readonly closed: boolean;
  sendFrame(type: 'auth.expiring', payload: { expires_at: string }): boolean;
  close(code: number, reason: string): void;
  /** An unexpected error: closes only this socket (1011). */
  fail(error: unknown): void;
}

export class TokenLifetime implements ClockOwner {
  /** This socket's place on the clock (the next warning or the close at exp). */
  private entry?: ClockEntry;
  /** What the entry is for: the `auth.expiring` warning, then the close at `exp`. */
  private stage: 'warn' | 'expire' = 'warn';

  constructor(private readonly holder: TokenHolder, public expiresAt: Date) {}

  /** Arms (or re-arms, after `auth.refresh`) the warning and the close for a token valid until `expiresAt`. */
  extendUntil(expiresAt: Date): void {
    this.expiresAt = expiresAt;
    this.cancel();
    if (this.holder.closed) return;
    const exp = expiresAt.getTime();
    const now = Date.now();
    const lead = Math.min(60_000, Math.floor((exp - now) / 5));
    this.stage = 'warn';
    this.entry = tokenClock.schedule(Math.max(now, exp - lead), this);
  }

  /** The clock: the warning is due, or the token has expired. A throw closes this socket (1011). */
  due(): void {
    try {
      if (this.stage === 'warn') {
        this.holder.sendFrame('auth.expiring', { expires_at: this.expiresAt.toISOString() });
        this.stage = 'expire';
        this.entry = tokenClock.schedule(this.expiresAt.getTime(), this);
      } else {
        this.holder.close(CloseCodes.unauthenticated, 'token_expired');
      }
    } catch (error) {
      this.holder.fail(error);
    }
  }

  /** Takes the pending entry off the clock; safe to call twice. */
  cancel(): void {
    tokenClock.cancel(this.entry);
    this.entry = undefined;
  }
}
