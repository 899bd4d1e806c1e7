/**
 * The per-user limits a gateway enforces, as one object (./index.ts lists them): it builds the
 * limiters the settings turn on and answers each check with nothing or a `rate_limited` refusal.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { closeConnection, pingWithin, type RedisConnections } from '../../redis/connections.js';
import type { Config } from '../../config/config.js';
import type { RequestError } from '../errors.js';
import { MemoryConnectionSlots, RedisConnectionSlots, type ConnectionSlots, type RedisSlotOptions } from './connection-slots.js';
import { InFlightLimiter } from './in-flight.js';
import { PolicyCloses } from './policy-closes.js';
import { tooManyConnections, tooManyInFlight } from './refusal.js';
import { consume, refund, userKey, windowLimiters, type User } from './window-limits.js';

type PolicySetting = 'policyBlockSeconds' | 'policyBlockMaxSeconds' | 'policyClosesPerAddress';
/** Config's rate limits; a caller that builds its own may leave the policy-close ones out (off). */
export type RateLimitSettings = Omit<Config['rateLimits'], PolicySetting> & Partial<Pick<Config['rateLimits'], PolicySetting>>;

export interface RateLimiterOptions {
  limits: RateLimitSettings;
  log: Logger;
  /** Shared through Redis by every gateway; absent: counted in this process (embedded mode). */
  redis?: RedisConnections;
  /** Length of the messages window. Not a setting: tests shorten it to watch a window end. @defaultValue 60000 */
  messageWindowMs?: number;
  /** Expiry and refresh of the Redis connection entries. */
  connectionSlots?: RedisSlotOptions;
}

export class RateLimiter {
  private readonly messages?: RateLimiterAbstract;
  private readonly threads?: RateLimiterAbstract;
  private readonly rest?: RateLimiterAbstract;
  private readonly inFlight?: InFlightLimiter;
  private readonly slots?: ConnectionSlots;
  private readonly policy?: PolicyCloses;
  private closing?: Promise<void>;

  private constructor(
    readonly limits: Readonly<RateLimitSettings>,
    private readonly log: Logger,
    private readonly redis: Redis | undefined,
    prefix: string,
    private readonly messageWindowMs: number,
    slotOptions: RedisSlotOptions,
  ) {
    const windowLimiter = windowLimiters(redis, prefix);
    if (limits.messagesPerMinute > 0) this.messages = windowLimiter('messages', limits.messagesPerMinute, Math.max(1, Math.round(messageWindowMs / 1000)));
    if (limits.threadsPerMinute > 0) this.threads = windowLimiter('threads', limits.threadsPerMinute, 60);
    if (limits.restPerSecond > 0) this.rest = new RateLimiterMemory({ points: limits.restPerSecond, duration: 1 });
    if (limits.inFlightPerUser > 0) this.inFlight = new InFlightLimiter(limits.inFlightPerUser, limits.inFlightPerUser * 8);
    if (limits.connectionsPerUser > 0) {
      this.slots = redis ? new RedisConnectionSlots(redis, prefix, log, slotOptions) : new MemoryConnectionSlots();
    }
    const { policyBlockSeconds = 0, policyBlockMaxSeconds = policyBlockSeconds, policyClosesPerAddress = 0 } = limits;
    if (policyBlockSeconds > 0) {
      const settings = { blockSeconds: policyBlockSeconds, maxBlockSeconds: policyBlockMaxSeconds, perAddress: policyClosesPerAddress };
      this.policy = new PolicyCloses(settings, windowLimiter);
    }
  }

  static async create(options: RateLimiterOptions): Promise<RateLimiter> {
    const { limits, log } = options;
    const shared = options.redis && (limits.messagesPerMinute > 0 || limits.connectionsPerUser > 0 || limits.threadsPerMinute > 0 || (limits.policyBlockSeconds ?? 0) > 0);
    let redis: Redis | undefined;
    if (shared) {
      // A slow Redis must not stall a send or an upgrade for long: after a second, the insurance
      // limiter (messages) or an unchecked admission (sockets) takes over.
      redis = options.redis!.connect('limits');
      await pingWithin(redis, 1_000).catch((error) => log.warn({ err: error }, 'rate limits: Redis not answering yet; counting in process until it does'));
    }
    return new RateLimiter(limits, log, redis, options.redis?.prefix ?? '', options.messageWindowMs ?? 60_000, options.connectionSlots ?? {});
  }

  /** Counts one message send of `user`; throws `rate_limited` once the window's budget is spent. */
  async consumeMessage(user: User): Promise<void> {
    const per = this.messageWindowMs === 60_000 ? 'minute' : `${this.messageWindowMs / 1000} s`;
    await consume(this.messages, user, `Too many messages: at most ${this.limits.messagesPerMinute} per ${per}`);
  }

  /** Counts one new thread of `user`; throws `rate_limited` past RATE_LIMIT_THREADS_PER_MIN. */
  async consumeThread(user: User): Promise<void> {
    await consume(this.threads, user, `Too many new threads: at most ${this.limits.threadsPerMinute} per minute`);
  }

  /** Gives back a thread that was not created after all. */
  async refundThread(user: User): Promise<void> {
    await refund(this.threads, user, 'thread budget not refunded', this.log);
  }

  /** Counts one REST request of `user`; throws `rate_limited` past RATE_LIMIT_REST_PER_SEC. */
  async consumeRest(user: User): Promise<void> {
    await consume(this.rest, user, `Too many requests: at most ${this.limits.restPerSecond} per second per user`);
  }

  /**
   * Runs one request of `user` within RATE_LIMIT_IN_FLIGHT_PER_USER: it waits while the user has
   * that many running; refused (`rate_limited`) when too many are already waiting, unless
   * `patient` (a replay's pages: owed once acked, so they wait instead).
   */
  async withRequestSlot<T>(user: User, work: () => Promise<T>, options: { patient?: boolean } = {}): Promise<T> {
    if (!this.inFlight) return work();
    const done = await this.inFlight.run(userKey(user), work, options.patient);
    if (!done) throw tooManyInFlight(this.limits.inFlightPerUser);
    return done.value;
  }

  /** Gives back a send that stored nothing (a deduplicated retry, or one refused by the store). */
  async refundMessage(user: User): Promise<void> {
    await refund(this.messages, user, 'message budget not refunded', this.log);
  }

  /** Takes one of `user`'s socket slots for connection `id`; the refusal to answer with otherwise. */
  async acquireConnection(user: User, id: string): Promise<RequestError | undefined> {
    if (!this.slots || this.closing) return undefined;
    const limit = this.limits.connectionsPerUser;
    if (await this.slots.acquire(userKey(user), id, limit)) return undefined;
    return tooManyConnections(limit);
  }

  /** The refusal of a handshake of `user` from `address` after policy closes (./policy-closes.ts), or undefined. */
  checkPolicyCloses(user: User, address: string): Promise<RequestError | undefined> {
    return this.closing || !this.policy ? Promise.resolve(undefined) : this.policy.check(userKey(user), address);
  }

  /** What a socket from `address` keeps of it, so that its policy close counts against the address too ('' when nothing is counted per address). */
  policyAddress(address: string): string {
    return this.policy?.addressOf(address) ?? '';
  }

  /** Socket `connection` of `user` was closed for policy (4008); failures are logged, not thrown. */
  policyClosed(connection: { readonly address?: string }, user: User): void {
    this.policy?.closed(connection.address ?? '', userKey(user)).catch((error) => this.log.warn({ err: error }, 'policy close not counted'));
  }

  /** Connection `id` closed (or never opened). */
  releaseConnection(id: string): void {
    this.slots?.release(id);
  }

  /** Socket slots this process holds (metrics, leak tests). */
  connectionSlotCount(): number {
    return this.slots?.count() ?? 0;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.slots?.close();
      if (this.redis) await closeConnection(this.redis);
    })();
    return this.closing;
  }
}
