/**
 * The per-user limits a gateway enforces (config.rateLimits; 0 turns one off):
 *
 * - messages per user per minute: rate-limiter-flexible, counted in Redis when REDIS_URL is set
 *   (so every gateway draws on one budget) with an in-memory insurance limiter that takes over
 *   while Redis is unreachable; in process when embedded;
 * - open sockets per user: ./connection-slots.ts (a Redis sorted set, or in process);
 * - frames per connection per second: on the Connection itself (synchronous, in order);
 * - queued plus running runs per user: counted in Postgres inside recordTurn's transaction;
 * - threads created per user per minute: like messages (Redis-shared, or in process);
 * - requests in flight per user and REST requests per user per second: in this gateway
 *   (./in-flight.ts, and rate-limiter-flexible in memory): they protect this gateway's pool;
 * - waiting long-polls count as open sockets (a long-poll holds a slot while it waits);
 * - handshakes after policy closes (4008), per user and per client address: ./policy-closes.ts,
 *   Redis-shared like messages, or in process.
 *
 * Refusals are RequestErrors with code `rate_limited`, a message naming the limit and
 * `retry_after_ms`.
 */
import type { Redis } from 'ioredis';
import { closeConnection, type RedisConnections } from '../../redis/connections.js';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../config/config.js';
import { RequestError } from '../errors.js';
import { MemoryConnectionSlots, RedisConnectionSlots, type ConnectionSlots, type RedisSlotOptions } from './connection-slots.js';
import { InFlightLimiter } from './in-flight.js';
import { PolicyCloses } from './policy-closes.js';
import { rateLimited } from './refusal.js';

export { describeWait, rateLimited, retryAfterSeconds } from './refusal.js';

type PolicySetting = 'policyBlockSeconds' | 'policyBlockMaxSeconds' | 'policyClosesPerAddress';
/** Config's rate limits; a caller that builds its own may leave the policy-close ones out (off). */
export type RateLimitSettings = Omit<Config['rateLimits'], PolicySetting> & Partial<Pick<Config['rateLimits'], PolicySetting>>;

interface User {
  workspaceId: string;
  userId: string;
}

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

/** How long a client refused for open sockets or active runs should wait: a hint, not a window. */
export const RETRY_HINT_MS = 1000;

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
    /** `points` per `duration` seconds and user, shared through Redis when there is one. */
    const windowLimiter = (name: string, points: number, duration: number) =>
      redis
        ? new RateLimiterRedis({
            storeClient: redis,
            keyPrefix: `${prefix}rl:${name}`,
            points,
            duration,
            // While Redis is unreachable each gateway counts on its own rather than refusing everyone.
            rejectIfRedisNotReady: true,
            insuranceLimiter: new RateLimiterMemory({ points, duration }),
          })
        : new RateLimiterMemory({ points, duration });
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
      await redis.ping().catch((error) => log.warn({ err: error }, 'rate limits: Redis not answering yet; counting in process until it does'));
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
    if (!done) throw rateLimited(`Too many requests at once: at most ${this.limits.inFlightPerUser} run at a time per user, and a few more may wait`, 250);
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
    return rateLimited(
      `Too many open connections: at most ${limit} per user`,
      RETRY_HINT_MS,
      `Close one, or retry in ${RETRY_HINT_MS / 1000} s.`,
    );
  }

  /** The refusal of a handshake of `user` from `address` after policy closes (./policy-closes.ts), or undefined. */
  checkPolicyCloses(user: User, address: string): Promise<RequestError | undefined> {
    return this.closing || !this.policy ? Promise.resolve(undefined) : this.policy.check(userKey(user), address);
  }

  /** Remembers the address socket `connection` connected from (its policy close counts against it too). */
  trackAddress(connection: object, address: string): void {
    this.policy?.track(connection, address);
  }

  /** Socket `connection` of `user` was closed for policy (4008); failures are logged, not thrown. */
  policyClosed(connection: object, user: User): void {
    this.policy?.closed(connection, userKey(user)).catch((error) => this.log.warn({ err: error }, 'policy close not counted'));
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

/** The runs-per-user refusal (the count itself is in db/turns.repository.ts). */
export function tooManyRuns(limit: number): RequestError {
  return rateLimited(
    `Too many active runs: at most ${limit} queued or running per user`,
    RETRY_HINT_MS,
    `Retry in ${RETRY_HINT_MS / 1000} s, once one has finished (or cancel one).`,
  );
}

/** The frames-per-second refusal. */
export function tooManyFrames(limit: number, retryAfterMs: number): RequestError {
  return rateLimited(`Too many frames: at most ${limit} per second on one connection`, retryAfterMs);
}

/** One point of `user` from `limiter` (none: no limit); past the budget a `rate_limited` that says `what`. */
async function consume(limiter: RateLimiterAbstract | undefined, user: User, what: string): Promise<void> {
  if (!limiter) return;
  try {
    await limiter.consume(userKey(user));
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    throw rateLimited(what, error.msBeforeNext);
  }
}

/** Gives `user`'s point back to `limiter` (none: nothing to do); a failure is logged, not thrown. */
async function refund(limiter: RateLimiterAbstract | undefined, user: User, failed: string, log: Logger): Promise<void> {
  await limiter?.reward(userKey(user)).catch((error) => log.warn({ err: error }, failed));
}

function userKey(user: User): string {
  return `${encodeURIComponent(user.workspaceId)}:${encodeURIComponent(user.userId)}`;
}
