/**
 * A socket's token lifetime: `auth.expiring` ahead of `exp` (a minute, or a fifth of the remaining
 * time when shorter), then a close with 4001 `token_expired` at `exp`, unless `auth.refresh`
 * extended it first. Both moments are the lifetime's own place on the process's one token clock
 * (./token-clock.ts), never a timer per socket.
 */
import { CloseCodes } from '../../protocol/codes.js';
import { small, tokenClock, type ClockEntry } from './token-clock.js';

/** What the lifetime acts on (its Connection). */
export interface TokenHolder {
  readonly closed: boolean;
  sendFrame(type: 'auth.expiring', payload: { expires_at: string }): boolean;
  close(code: number, reason: string): void;
  /** An unexpected error: closes only this socket (1011). */
  fail(error: unknown): void;
}

export class TokenLifetime implements ClockEntry {
  // The clock's fields: this object is its own entry on the clock.
  clockAt = 0;
  clockIndex = -1;
  /** What the clock's call is for: the `auth.expiring` warning, then the close at `exp`. */
  private stage: 'warn' | 'expire' = 'warn';
  /** How long after the warning `exp` comes (so `exp` needs no field of its own). */
  private lead = 0;

  /** Armed by `extendUntil` (the socket's `open`, then each `auth.refresh`). */
  constructor(private readonly holder: TokenHolder) {}

  /** The token's `exp` the socket lives until (while armed). */
  private get expiresAt(): Date {
    return new Date(tokenClock.origin + this.clockAt + (this.stage === 'warn' ? this.lead : 0));
  }

  /** Arms (or re-arms, after `auth.refresh`) the warning and the close for a token valid until `expiresAt`. */
  extendUntil(expiresAt: Date): void {
    this.cancel();
    if (this.holder.closed) return;
    const exp = expiresAt.getTime();
    const now = Date.now();
    const lead = Math.min(60_000, Math.floor((exp - now) / 5));
    this.stage = 'warn';
    tokenClock.schedule(this, Math.max(now, exp - lead));
    // From here the clock's time and the lead say when exp is.
    this.lead = small(exp - (tokenClock.origin + this.clockAt));
  }

  /** The clock: the warning is due, or the token has expired. A throw closes this socket (1011). */
  due(): void {
    try {
      if (this.stage === 'warn') {
        const expiresAt = this.expiresAt;
        this.holder.sendFrame('auth.expiring', { expires_at: expiresAt.toISOString() });
        this.stage = 'expire';
        tokenClock.schedule(this, expiresAt.getTime());
      } else {
        this.holder.close(CloseCodes.unauthenticated, 'token_expired');
      }
    } catch (error) {
      this.holder.fail(error);
    }
  }

  /** Takes the pending call off the clock; safe to call twice. */
  cancel(): void {
    tokenClock.cancel(this);
  }
}
