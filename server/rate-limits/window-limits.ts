/**
 * Per-user budgets over a window (messages and threads per minute, REST requests per second, the
 * policy-close counts), on rate-limiter-flexible: counted in Redis when there is one, so every
 * gateway draws on one budget, with an in-memory insurance limiter that takes over while Redis is
 * unreachable; in process when embedded.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { rateLimited } from './refusal.js';
import type { LimiterFactory } from './policy-closes.js';

/** Whose budget: one user of one workspace. */
export interface User {
  workspaceId: string;
  userId: string;
}

/** `points` per `duration` seconds and user, shared through `redis` (under `prefix`) when there is one. */
export function windowLimiters(redis: Redis | undefined, prefix: string): LimiterFactory {
  return (name, points, duration) =>
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
}

/** One point of `user` from `limiter` (none: no limit); past the budget a `rate_limited` that says `what`. */
export async function consume(limiter: RateLimiterAbstract | undefined, user: User, what: string): Promise<void> {
  if (!limiter) return;
  try {
    await limiter.consume(userKey(user));
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    throw rateLimited(what, error.msBeforeNext);
  }
}

/** Gives `user`'s point back to `limiter` (none: nothing to do); a failure is logged, not thrown. */
export async function refund(limiter: RateLimiterAbstract | undefined, user: User, failed: string, log: Logger): Promise<void> {
  await limiter?.reward(userKey(user)).catch((error) => log.warn({ err: error }, failed));
}

/** The key of `user` in every per-user limiter. */
export function userKey(user: User): string {
  return `${encodeURIComponent(user.workspaceId)}:${encodeURIComponent(user.userId)}`;
}
