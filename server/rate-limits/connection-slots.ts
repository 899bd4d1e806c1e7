/**
 * Open sockets per user (RATE_LIMIT_CONNECTIONS_PER_USER). In Redis, each user has a sorted set
 * whose members are connection ids and whose scores are expiry times (Redis's clock): a socket is
 * added at the upgrade, after auth, by one script that drops expired members, counts and adds;
 * it is removed when it closes. Each gateway refreshes the entries of its open sockets every
 * `refreshMs`, so the entries of a gateway that crashed expire after `ttlMs` instead of holding
 * the user's slots forever. Embedded mode counts in process.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface ConnectionSlots {
  /** Adds socket `id` to `user`'s open sockets unless they already hold `limit`; true when added. */
  acquire(user: string, id: string, limit: number): Promise<boolean>;
  /** The socket closed (or never opened): frees its slot. Safe to call twice. */
  release(id: string): void;
  /** Slots this process holds (metrics, leak tests). */
  count(): number;
  close(): Promise<void>;
}

/** One process's sockets (embedded mode): nothing can crash without taking the counts with it. */
export class MemoryConnectionSlots implements ConnectionSlots {
  private readonly byUser = new Map<string, Set<string>>();
  private readonly userOf = new Map<string, string>();

  async acquire(user: string, id: string, limit: number): Promise<boolean> {
    const ids = this.byUser.get(user) ?? new Set<string>();
    if (ids.size >= limit) return false;
    ids.add(id);
    this.byUser.set(user, ids);
    this.userOf.set(id, user);
    return true;
  }

  release(id: string): void {
    const user = this.userOf.get(id);
    if (user === undefined) return;
    this.userOf.delete(id);
    const ids = this.byUser.get(user);
    ids?.delete(id);
    if (ids?.size === 0) this.byUser.delete(user);
  }

  count(): number {
    return this.userOf.size;
  }

  async close(): Promise<void> {
    this.byUser.clear();
    this.userOf.clear();
  }
}

/** Redis's clock in ms, so gateways with skewed clocks agree on what has expired. */
const NOW = `local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1] the user's set; ARGV: connection id, limit, ttl ms. Returns 1 when added, 0 when full. */
const ACQUIRE = `${NOW}
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[3])
return 1`;

/** KEYS[1] the user's set; ARGV: ttl ms, then the ids of this gateway's open sockets of that user. */
const REFRESH = `${NOW}
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('zadd', KEYS[1], expiry, ARGV[i]) end
redis.call('pexpire', KEYS[1], ARGV[1])
return #ARGV - 1`;

type SlotCommands = {
  rlConnAcquire(key: string, id: string, limit: number, ttlMs: number): Promise<number>;
  rlConnRefresh(key: string, ttlMs: number, ...ids: string[]): Promise<number>;
};

export interface RedisSlotOptions {
  /** How long an entry lives without a refresh (a crashed gateway's sockets free up after it). @defaultValue 60000 */
  ttlMs?: number;
  /** How often this gateway refreshes its sockets' entries. @defaultValue a third of ttlMs */
  refreshMs?: number;
}

/**
 * Shared by every gateway. A Redis failure never refuses a socket: it is let in and kept in this
 * gateway's list, so the next refresh that reaches Redis counts it again.
 */
export class RedisConnectionSlots implements ConnectionSlots {
  /** This gateway's sockets: connection id → the user's key. */
  private readonly held = new Map<string, string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly redis: Redis & SlotCommands;
  private readonly ttlMs: number;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(redis: Redis, private readonly prefix: string, private readonly log: Logger, options: RedisSlotOptions = {}) {
    this.ttlMs = options.ttlMs ?? 60_000;
    redis.defineCommand('rlConnAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand('rlConnRefresh', { numberOfKeys: 1, lua: REFRESH });
    this.redis = redis as Redis & SlotCommands;
    this.timer = setInterval(() => this.track(this.refresh()), options.refreshMs ?? Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  /** The Redis key of a user's set (tests read it). */
  key(user: string): string {
    return `${this.prefix}rl:connections:${user}`;
  }

  async acquire(user: string, id: string, limit: number): Promise<boolean> {
    const key = this.key(user);
    if (this.redis.status === 'ready') {
      try {
        const added = await this.redis.rlConnAcquire(key, id, limit, this.ttlMs);
        if (added !== 1) return false;
      } catch (error) {
        this.log.warn({ err: error }, 'connection limit not checked: Redis failed; letting the socket in');
      }
    } else {
      this.log.warn({ status: this.redis.status }, 'connection limit not checked: Redis is not connected; letting the socket in');
    }
    if (this.closed) {
      void this.remove(key, id);
      return true;
    }
    this.held.set(id, key);
    return true;
  }

  release(id: string): void {
    const key = this.held.get(id);
    if (key === undefined) return;
    this.held.delete(id);
    this.track(this.remove(key, id));
  }

  count(): number {
    return this.held.size;
  }

  /** Pushes this gateway's sockets' expiry forward (and re-adds any Redis lost). */
  private async refresh(): Promise<void> {
    if (this.held.size === 0 || this.redis.status !== 'ready') return;
    const byKey = new Map<string, string[]>();
    for (const [id, key] of this.held) {
      const ids = byKey.get(key);
      if (ids) ids.push(id);
      else byKey.set(key, [id]);
    }
    // One command per key, all sent at once (ioredis writes them without waiting for answers), not
    // a pipeline: on a Redis Cluster a pipeline must stay within one slot, and users' keys do not.
    await Promise.allSettled([...byKey].map(([key, ids]) => this.redis.rlConnRefresh(key, this.ttlMs, ...ids)));
  }

  private async remove(key: string, id: string): Promise<void> {
    await this.redis.zrem(key, id);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work
      .catch((error) => this.log.warn({ err: error }, 'connection slot bookkeeping failed; Redis entries expire on their own'))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Stops refreshing and removes this gateway's remaining entries (best effort). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.held.size > 0 && this.redis.status === 'ready') {
      this.track(Promise.allSettled([...this.held].map(([id, key]) => this.redis.zrem(key, id))));
    }
    this.held.clear();
    await Promise.all([...this.pending]);
  }
}
