/**
 * The per-user limits a gateway enforces (config.rateLimits; 0 turns one off):
 *
 * - messages per user per minute: ./window-limits.ts, counted in Redis when REDIS_URL is set
 *   (so every gateway draws on one budget) with an in-memory insurance limiter that takes over
 *   while Redis is unreachable; in process when embedded;
 * - open sockets per user: ./connection-slots.ts (a Redis sorted set, or in process);
 * - frames per connection per second: on the connection itself (../ws/frame-rate.ts: synchronous, in order);
 * - queued plus running runs per user: counted in Postgres inside recordTurn's transaction;
 * - threads created per user per minute: like messages (Redis-shared, or in process);
 * - requests in flight per user and REST requests per user per second: in this gateway
 *   (./in-flight.ts, and rate-limiter-flexible in memory): they protect this gateway's pool;
 * - waiting long-polls count as open sockets (a long-poll holds a slot while it waits);
 * - handshakes after policy closes (4008), per user and per client address: ./policy-closes.ts,
 *   Redis-shared like messages, or in process.
 *
 * Refusals are RequestErrors with code `rate_limited`, a message naming the limit and
 * `retry_after_ms` (./refusal.ts). The gateway holds one RateLimiter (./rate-limiter.ts) for all of
 * them; this file is the folder's entry.
 */
export { RateLimiter, type RateLimiterOptions, type RateLimitSettings } from './rate-limiter.js';
export { RETRY_HINT_MS, describeWait, rateLimited, retryAfterSeconds, tooManyFrames, tooManyRuns } from './refusal.js';
