/**
 * The services of a scaled-out deployment, for the `scaled` test backend (test/support/stack.ts):
 * a throwaway Postgres with a streaming read replica (DATABASE_READ_URL) and a throwaway 3-master
 * Redis Cluster with a replica each (REDIS_CLUSTER_NODES). They are started once per test process,
 * when a suite first asks, and shared by the suites of that process: each gets a database of its
 * own on the primary (which the replica follows) and its own key prefix. When the last suite lets
 * go and none asks again within a second, they are stopped and removed; a process that ends first
 * leaves them to the throwaways' exit hook and reaper, like any throwaway server.
 */
import { randomBytes } from 'node:crypto';
import type { TestDatabase } from './database.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from './throwaway.js';
import { queryOn, startThrowawayReplica, type ThrowawayReplica } from './throwaway-replica.js';
import { startThrowawayRedisCluster, type ThrowawayRedisCluster } from './throwaway-redis-cluster.js';

interface Services {
  primary: ThrowawayPostgres;
  replica: ThrowawayReplica;
  cluster: ThrowawayRedisCluster;
}

export interface ScaledServices {
  /** A fresh database on the primary; drop() also lets go of the services. */
  database: TestDatabase;
  /** The settings that put a node on them (over the stack's DATABASE_URL and REDIS_URL). */
  env: Record<string, string>;
  replica: ThrowawayReplica;
  cluster: ThrowawayRedisCluster;
}

let shared: Promise<Services> | undefined;
let users = 0;
let idle: NodeJS.Timeout | undefined;

async function start(): Promise<Services> {
  const [primary, cluster] = await Promise.all([startThrowawayPostgres(), startThrowawayRedisCluster()]);
  const replica = await startThrowawayReplica(primary);
  return { primary, replica, cluster };
}

async function stop(services: Promise<Services>): Promise<void> {
  const { primary, replica, cluster } = await services;
  await Promise.allSettled([cluster.close(), replica.close()]);
  await primary.close();
}

const withDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

export async function acquireScaledServices(): Promise<ScaledServices> {
  clearTimeout(idle);
  users += 1;
  const services = (shared ??= start());
  let s: Services;
  try {
    s = await services;
  } catch (error) {
    users -= 1;
    if (shared === services) shared = undefined;
    throw error;
  }
  const name = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await queryOn(s.primary.url, `create database "${name}"`);
  await s.replica.caughtUp(); // the database is there before a node's replica pool connects to it
  let released = false;
  return {
    database: {
      url: withDatabase(s.primary.url, name),
      name,
      async drop() {
        if (released) return;
        released = true;
        await queryOn(s.primary.url, `drop database if exists "${name}" with (force)`).catch(() => {});
        users -= 1;
        if (users > 0) return;
        idle = setTimeout(() => {
          if (users > 0 || shared !== services) return;
          shared = undefined;
          void stop(services);
        }, 1_000);
        idle.unref();
      },
    },
    env: { DATABASE_READ_URL: withDatabase(s.replica.url, name), REDIS_URL: '', REDIS_CLUSTER_NODES: s.cluster.nodesSetting },
    replica: s.replica,
    cluster: s.cluster,
  };
}
