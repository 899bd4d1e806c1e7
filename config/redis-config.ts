/**
 * The Redis part of the configuration (./config.ts): one node (REDIS_URL) or a Redis Cluster
 * (REDIS_CLUSTER_NODES), the key prefix, and how many turn queues the turns are spread over.
 */
import { ConfigError, int, str, url, type Env } from './env.js';

/** The turn queues on a cluster by default: 6 spreads evenly over 2, 3 or 6 masters. */
export const CLUSTER_TURN_QUEUE_PARTITIONS = 6;

export interface RedisConfig {
  /** Redis URL for pub/sub and the turn queue. Unset (and no REDIS_CLUSTER_NODES): in-process broker and queue (one node). */
  redisUrl?: string;
  /**
   * REDIS_CLUSTER_NODES, `host:port,host:port,…`: a Redis Cluster (any of its nodes; the rest are
   * learnt from it) instead of REDIS_URL. Thread events and cancel signals go on sharded pub/sub,
   * turns on hash-tagged queues (see TURN_QUEUE_PARTITIONS).
   */
  redisClusterNodes?: Array<{ host: string; port: number }>;
  /**
   * Prefix for every Redis key and channel this process uses, so deployments can share a Redis. On a
   * cluster it must not hold `{` or `}` (a hash tag in it would put every key on one slot). @defaultValue ''
   */
  redisPrefix: string;
  /**
   * How many BullMQ queues the turns are spread over (a thread always on the same one, by a stable
   * hash of its id); workers consume all of them. @defaultValue 1 on one node (the queue named as
   * always), 6 on a cluster
   */
  turnQueuePartitions: number;
}

export function redisConfig(env: Env): RedisConfig {
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const redisClusterNodes = clusterNodes(env);
  if (redisUrl && redisClusterNodes) {
    throw new ConfigError('REDIS_CLUSTER_NODES', 'and REDIS_URL are both set: set REDIS_URL for one Redis node, or REDIS_CLUSTER_NODES for a Redis Cluster, not both');
  }
  const redisPrefix = str(env, 'REDIS_PREFIX') ?? '';
  if (redisClusterNodes && /[{}]/.test(redisPrefix)) {
    throw new ConfigError('REDIS_PREFIX', `must not contain '{' or '}' on a Redis Cluster (a hash tag in the prefix would put every key and channel on one slot), got '${redisPrefix}'`);
  }
  const partitions = int(env, 'TURN_QUEUE_PARTITIONS', redisClusterNodes ? CLUSTER_TURN_QUEUE_PARTITIONS : 1, 1, 1024);
  return { redisUrl, redisClusterNodes, redisPrefix, turnQueuePartitions: partitions };
}

function clusterNodes(env: Env): RedisConfig['redisClusterNodes'] {
  const raw = str(env, 'REDIS_CLUSTER_NODES');
  if (raw === undefined) return undefined;
  const entries = raw.split(',').map((entry) => entry.trim());
  return entries.map((entry) => {
    // host:port, [v6]:port
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65_535) {
      throw new ConfigError('REDIS_CLUSTER_NODES', `'${entry}' is not host:port (expected a comma-separated list like 10.0.0.1:6379,10.0.0.2:6379)`);
    }
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
}
