/**
 * Which implementation each backing part runs on, decided once from the configuration: with
 * DATABASE_URL the store is Postgres (DATABASE_READ_URL its read replica), else the embedded
 * PGlite in DATA_DIR; with REDIS_URL (or REDIS_CLUSTER_NODES) the broker, the turn queue, the tickets and the shared rate
 * limits are on Redis (through one connection factory), else all of them run in this process.
 */
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.js';
import { ConfigError, type Config } from '../config/config.js';
import { redactUrl } from '../config/env.js';
import type { StoreOptions } from '../db/connect.js';
import { metrics } from '../metrics/index.js';
import { redisConnections, type RedisConnections } from '../redis/connections.js';

/** The bus: what carries events, jobs, tickets and shared limits between processes. */
export type Bus = { kind: 'embedded' } | { kind: 'redis'; redis: RedisConnections };

export interface Backends {
  store: StoreOptions;
  /** DATABASE_READ_URL: the read replica clients' reads may go to (the gateway's only). */
  readReplica?: { url: string; poolSize: number; statementTimeoutMs: number };
  bus: Bus;
  /** What each part runs on, for the log and the banner (no passwords). */
  modes: { store: string; replica?: string; broker: string; queue: string };
}

export function chooseBackends(config: Readonly<Config>, log: Logger): Backends {
  const store: StoreOptions = config.databaseUrl
    ? { kind: 'postgres', url: config.databaseUrl, poolSize: config.databasePoolSize, statementTimeoutMs: config.database.statementTimeoutMs }
    : { kind: 'pglite', dataDir: config.dataDir };
  const bus: Bus = config.redisUrl || config.redisClusterNodes
    ? {
        kind: 'redis',
        redis: redisConnections({
          ...(config.redisClusterNodes ? { clusterNodes: config.redisClusterNodes } : { url: config.redisUrl! }),
          prefix: config.redisPrefix,
          onError: (role, error) => {
            metrics.redisError(role);
            // The queue's errors were the only ones logged before: the others surface as failed commands.
            if (role === 'queue' || role === 'queue-blocking') log.warn({ err: error, role }, 'queue connection error');
          },
        }),
      }
    : { kind: 'embedded' };
  const readReplica = config.databaseReadUrl
    ? { url: config.databaseReadUrl, poolSize: config.databasePoolSize, statementTimeoutMs: config.database.statementTimeoutMs }
    : undefined;
  return {
    store,
    readReplica,
    bus,
    modes: {
      ...(readReplica ? { replica: `postgres ${redactUrl(readReplica.url)} (replay, history, lists, search)` } : {}),
      // The embedded store's description (its folder) is filled in once it is open.
      store: store.kind === 'postgres' ? `postgres ${redactUrl(store.url)}` : 'embedded PGlite',
      broker: bus.kind === 'redis' ? bus.redis.description : 'in-process (single node; set REDIS_URL to scale out)',
      queue: bus.kind === 'redis' ? `bullmq on redis (${config.turnQueuePartitions} queue${config.turnQueuePartitions === 1 ? '' : 's'})` : 'in-process',
    },
  };
}

/** Waits up to 5 s for the broker's first answer: an unreachable Redis ends start-up with one line. */
export async function waitForRedis(broker: Broker, redis: RedisConnections): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await broker.ping();
      return;
    } catch (error) {
      const where = redis.description.replace(/^redis /, '');
      if (Date.now() > deadline) throw new ConfigError(redis.cluster ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL', `cannot reach Redis at ${where}: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
