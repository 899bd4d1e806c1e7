/**
 * Every Redis connection the server opens, made in one place, by role. Each role's options say how
 * that use of Redis should behave while Redis is slow or gone; callers say only what they need a
 * connection for. Moving to another Redis deployment (a cluster) changes this file, not its users.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { redactUrl } from '../config/env.js';

/** What a connection is for. */
export type RedisRole =
  /**
   * Publishing thread events and cancel signals. Fails fast while Redis is down (every event is in
   * the log already, and gateways re-sync from it); a command stuck on a cut connection fails after
   * 5 s; the publishes of one batch go out in one write (auto-pipelining keeps their order).
   */
  | 'publish'
  /** SUBSCRIBE. Waits out any outage and re-subscribes by itself on reconnect. */
  | 'subscribe'
  /** BullMQ's Queue: adding jobs. Fails fast; the sweeper enqueues again what was lost. */
  | 'queue'
  /** BullMQ's Worker: blocking reads. BullMQ requires that a command is never given up. */
  | 'queue-blocking'
  /** Plain commands (connection tickets). */
  | 'commands'
  /**
   * Rate limits and connection slots: a slow Redis must not stall a send or an upgrade for long;
   * after a second the caller's in-process fallback takes over.
   */
  | 'limits';

/** Reconnect attempts at most a second apart (ioredis would back off up to 2 s). */
const retryStrategy = (times: number) => Math.min(times * 100, 1_000);

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  publish: { maxRetriesPerRequest: 2, enableOfflineQueue: false, retryStrategy, commandTimeout: 5_000, enableAutoPipelining: true },
  subscribe: { maxRetriesPerRequest: null, retryStrategy },
  queue: { maxRetriesPerRequest: 2, enableOfflineQueue: false },
  'queue-blocking': { maxRetriesPerRequest: null },
  commands: { maxRetriesPerRequest: 2 },
  limits: { maxRetriesPerRequest: 1, commandTimeout: 1_000 },
};

export interface RedisConnections {
  /** Prepended to every key and channel name this server uses, so deployments can share a Redis. */
  readonly prefix: string;
  /** Where the connections go, for logs and the banner (no password). */
  readonly description: string;
  /**
   * On a Redis Cluster (REDIS_CLUSTER_NODES): thread events and cancel signals go on sharded pub/sub
   * (SPUBLISH/SSUBSCRIBE), turns on hash-tagged queues, and every multi-key command stays in one slot.
   */
  readonly cluster: boolean;
  /**
   * A new connection for `role`, connecting at once. The caller owns it and closes it. Errors are
   * reported to `onError` (ioredis logs them loudly when nobody listens); they also surface as
   * failed commands to whoever issued them. On a cluster this is an ioredis `Cluster` (same
   * commands, routed by slot; typed as `Redis` because callers use only what both have); the
   * 'subscribe' role's has `shardedSubscribers`: one subscriber connection per master, made when a
   * channel on that master is first subscribed.
   */
  connect(role: RedisRole): Redis;
}

export type RedisSettings = ({ url: string; clusterNodes?: undefined } | { url?: undefined; clusterNodes: ClusterNode[] }) & {
  prefix: string;
  /** Hears every connection's errors, with its role (metrics count them). */
  onError?: (role: RedisRole, error: Error) => void;
};

/** A cluster node to start from (any of them: the client learns the rest with CLUSTER SLOTS). */
export interface ClusterNode {
  host: string;
  port: number;
}

/**
 * The role's options for a cluster: per-node options (timeouts, retries of a command) under
 * `redisOptions`, the rest on the Cluster itself. The node connections of a Cluster never reconnect
 * by themselves; the Cluster does (`clusterRetryStrategy`) and refreshes its slot map.
 */
function clusterOptions(role: RedisRole): ClusterOptions {
  const { retryStrategy: _retry, enableOfflineQueue, enableAutoPipelining, ...node } = ROLE_OPTIONS[role];
  return {
    redisOptions: node,
    clusterRetryStrategy: retryStrategy,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(enableAutoPipelining ? { enableAutoPipelining } : {}),
    // A failover takes a few seconds (node timeout + election); a command routed meanwhile retries.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    ...(role === 'subscribe' ? { shardedSubscribers: true } : {}),
  };
}

export function redisConnections(settings: RedisSettings): RedisConnections {
  const nodes = settings.clusterNodes;
  return {
    prefix: settings.prefix,
    cluster: nodes !== undefined,
    description: nodes ? `redis cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')}` : `redis ${redactUrl(settings.url!)}`,
    connect(role) {
      const connection = nodes ? (new Cluster(nodes, clusterOptions(role)) as unknown as Redis) : new Redis(settings.url!, ROLE_OPTIONS[role]);
      connection.on('error', (error: Error) => settings.onError?.(role, error));
      return connection;
    },
  };
}

/** Closes a connection politely (QUIT), or at once when Redis does not answer. */
export async function closeConnection(connection: Redis | Cluster): Promise<void> {
  await connection.quit().catch(() => {});
  connection.disconnect();
}

/**
 * PING, given up after `ms`: a Cluster keeps a command it cannot route yet (no node reachable) in
 * its offline queue, where no command timeout runs.
 */
export async function pingWithin(connection: Redis, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const answer = connection.ping();
  answer.catch(() => {});
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  try {
    await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Of `channels` (full names), one per cluster node that serves any of them, by the client's current
 * slot map. A command sent on a node's connection is answered after those sent on it before, so
 * one SSUBSCRIBE answered per node confirms every SSUBSCRIBE ioredis re-sent there.
 */
export function oneChannelPerNode(connection: Redis, channels: string[]): string[] {
  const slots = (connection as unknown as Cluster).slots;
  const chosen = new Map<string, string>();
  for (const channel of channels) {
    const node = slots[calculateSlot(channel)]?.[0] ?? channel;
    if (!chosen.has(node)) chosen.set(node, channel);
  }
  return [...chosen.values()];
}
