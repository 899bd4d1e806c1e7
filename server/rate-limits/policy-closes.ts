/**
 * Handshakes refused after policy closes. A socket closed with 4008 (past BAD_FRAME_LIMIT invalid
 * or refused frames) has cost the gateway its frames; a client that reconnects at once would cost
 * it again, without end. So:
 *
 * - a user's first policy close within POLICY_WINDOW_S is forgiven (a client that stumbled once
 *   reconnects at once); after each further one the user's handshakes are refused for
 *   RATE_LIMIT_POLICY_BLOCK_S, twice as long each time, up to RATE_LIMIT_POLICY_BLOCK_MAX_S;
 * - closes of sockets opened before the refusal began (the rest of one flood's sockets) neither
 *   count nor lengthen it: it grows only when the user comes back and is closed again;
 * - the client's address counts the same way, but only the users' counted closes, and forgives
 *   RATE_LIMIT_POLICY_CLOSES_PER_ADDRESS of them: one user's many sockets do not shut out the
 *   neighbours behind its NAT, many users flooding from one address do. IPv6 counts by /64.
 *
 * Counts and refusals are rate-limiter-flexible limiters from the caller: in Redis when there is
 * one (a refusal set by one gateway holds on every gateway), in process when embedded.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RequestError } from '../errors.js';
import { rateLimited } from './refusal.js';

export interface PolicyCloseSettings {
  /** The first refusal, in whole seconds (Redis expiries are whole seconds). */
  blockSeconds: number;
  /** The longest refusal. */
  maxBlockSeconds: number;
  /** Users' counted policy closes forgiven per address per window; 0: addresses are not limited. */
  perAddress: number;
}

/** The longest a refused handshake is held before it is answered. */
export const POLICY_HOLD_MS = 1000;
/** How long policy closes are counted, from the first. */
export const POLICY_WINDOW_S = 3600;
/** A user's policy closes forgiven per window. */
const PER_USER = 1;

/** A limiter named `name` of `points` per `durationSeconds`, shared through Redis when there is one. */
export type LimiterFactory = (name: string, points: number, durationSeconds: number) => RateLimiterAbstract;

export class PolicyCloses {
  /** Counted policy closes per key, for POLICY_WINDOW_S from the first. */
  private readonly strikes: RateLimiterAbstract;
  /** Refused keys: `block()` sets a key to 2 points for the refusal's length. */
  private readonly blocks: RateLimiterAbstract;
  /** Each key's counting, one at a time in this process: the closes of one flood's sockets see the refusal the first of them set. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly settings: PolicyCloseSettings, limiter: LimiterFactory) {
    this.strikes = limiter('policy-closes', Number.MAX_SAFE_INTEGER, POLICY_WINDOW_S);
    this.blocks = limiter('policy-blocks', 1, POLICY_WINDOW_S);
  }

  /**
   * What a socket keeps of the address it connected from, for when it is closed (its handshake is
   * long gone by then): the address's key, or '' when addresses are not limited.
   */
  addressOf(address: string): string {
    return this.settings.perAddress > 0 && address ? addressKey(address) : '';
  }

  /**
   * The refusal of a handshake of `user` from `address` while either is kept out (`rate_limited`,
   * with the longer wait), or undefined at once. A refusal is held for POLICY_HOLD_MS (the whole
   * wait, if shorter) and then carries the wait left: a client that reconnects at once, however
   * often it is told to wait, costs a handshake a second, not thousands.
   */
  async check(user: string, address: string): Promise<RequestError | undefined> {
    const [forUser, forAddress] = await Promise.all([
      this.remaining(`u:${user}`),
      this.settings.perAddress > 0 && address ? this.remaining(`a:${addressKey(address)}`) : 0,
    ]);
    const wait = Math.max(forUser, forAddress);
    if (wait <= 0) return undefined;
    const held = Math.min(wait, POLICY_HOLD_MS);
    await delay(held, undefined, { ref: false });
    const whose = forUser >= forAddress ? "This user's sockets keep" : 'Sockets from this address keep';
    return rateLimited(`${whose} being closed for invalid or refused frames (4008): new connections are refused for a while, longer each time`, wait - held);
  }

  /** A socket of `user` from `address` (addressOf's key) was closed for policy (4008): counted against the user and, if it counted, its address. */
  closed(address: string, user: string): Promise<void> {
    return this.serially(`u:${user}`, async () => {
      const counted = await this.strike(`u:${user}`, PER_USER);
      if (!counted || !address) return;
      await this.serially(`a:${address}`, async () => {
        await this.strike(`a:${address}`, this.settings.perAddress);
      });
    });
  }

  /** Counts a close of `key` unless it is refused already; past `forgiven`, refuses it for a doubling time. False when not counted. */
  private async strike(key: string, forgiven: number): Promise<boolean> {
    if ((await this.remaining(key)) > 0) return false;
    const { consumedPoints } = await this.strikes.penalty(key, 1);
    const over = consumedPoints - forgiven;
    if (over > 0) {
      const { blockSeconds, maxBlockSeconds } = this.settings;
      await this.blocks.block(key, Math.min(maxBlockSeconds, blockSeconds * 2 ** Math.min(over - 1, 30)));
    }
    return true;
  }

  /** Ms until `key` may connect again (0: now). */
  private async remaining(key: string): Promise<number> {
    const res = await this.blocks.get(key);
    return res && res.consumedPoints > 1 ? Math.max(0, res.msBeforeNext) : 0;
  }

  /** Runs `work` after the work queued before it for `key` has settled. */
  private serially(key: string, work: () => Promise<void>): Promise<void> {
    const run = (this.pending.get(key) ?? Promise.resolve()).then(work);
    const settled = run.catch(() => {});
    this.pending.set(key, settled);
    void settled.then(() => {
      if (this.pending.get(key) === settled) this.pending.delete(key);
    });
    return run;
  }
}

/** An address as uWS writes it, as a key: IPv4 as is (also mapped into IPv6: ::ffff:a.b.c.d), IPv6 by its /64. */
export function addressKey(text: string): string {
  const groups = text.toLowerCase().split(':');
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return text;
  const n = groups.map((g) => parseInt(g, 16));
  if (n.slice(0, 5).every((g) => g === 0) && n[5] === 0xffff) return [n[6]! >> 8, n[6]! & 255, n[7]! >> 8, n[7]! & 255].join('.');
  return `${n.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}
