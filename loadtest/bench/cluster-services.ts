/**
 * What the benchmark's cluster mode (`--services cluster|both`) adds to the private services: a
 * Redis Cluster of 3 masters with a replica each (test/support/throwaway-redis-cluster.ts) and a
 * streaming read replica of the bench's private Postgres (test/support/throwaway-replica.ts,
 * pg_basebackup -R), both on free loopback ports, both removed by the bench's clean-up (and by
 * their own exit hooks and reaper if the bench is killed). The server processes then get
 * REDIS_CLUSTER_NODES, TURN_QUEUE_PARTITIONS and DATABASE_READ_URL instead of REDIS_URL.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { onCleanup } from './cleanup.js';
import type { RedisNode, Services } from './services.js';
import { onNode, startThrowawayRedisCluster } from '../../test/support/throwaway-redis-cluster.js';
import { queryOn, startThrowawayReplica } from '../../test/support/throwaway-replica.js';
import type { ThrowawayPostgres } from '../../test/support/throwaway.js';

export interface ClusterServices {
  /** REDIS_CLUSTER_NODES. */
  nodesSetting: string;
  /** Every node, masters first, each named `redis-<m|r><n>` with its port, pid, role and slots. */
  redisNodes: RedisNode[];
  /** TURN_QUEUE_PARTITIONS. */
  partitions: number;
  /** DATABASE_READ_URL: the bench's database on the replica. */
  replicaUrl: string;
  /** The replica's postmaster: its CPU is its whole process tree (WAL replay and receiver included). */
  replicaRoot: number;
  facts: Record<string, string>;
}

/** A throwaway-shaped handle on the bench's private Postgres, which the replica is made from. */
function primaryHandle(services: Services): ThrowawayPostgres {
  const admin = new URL(services.databaseUrl);
  admin.pathname = '/postgres';
  return {
    url: admin.toString(),
    port: Number(admin.port),
    dir: '',
    running: true,
    stop: () => Promise.reject(new Error('the bench owns its Postgres')),
    start: () => Promise.reject(new Error('the bench owns its Postgres')),
    close: () => Promise.resolve(),
    log: () => '',
  };
}

export async function startClusterServices(services: Services, partitions: number): Promise<ClusterServices> {
  if (!services.private) throw new Error('--services cluster|both needs the private services (no --database-url/--redis-url): the replica is made from the private Postgres');
  const primary = primaryHandle(services);
  // The replica with the primary's durability and limits (a hot standby refuses max_connections
  // below its primary's), so its CPU is what a production replica's would be.
  const settings = (await queryOn<{ name: string; setting: string }>(primary.url, "select name, setting from pg_settings where name in ('max_connections', 'fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers')"))
    .map((row) => `${row.name}=${row.name === 'shared_buffers' ? `${Number(row.setting) * 8}kB` : row.setting}`);
  const [cluster, replica] = await Promise.all([startThrowawayRedisCluster(), startThrowawayReplica(primary, settings)]);
  onCleanup('redis cluster', () => cluster.close());
  onCleanup('postgres replica', () => replica.close());
  const topology = await cluster.topology();
  const masters = topology.filter((n) => n.role === 'master').sort((a, b) => a.port - b.port);
  const ordered = [...masters, ...topology.filter((n) => n.role === 'replica').sort((a, b) => masters.findIndex((m) => m.id === a.masterId) - masters.findIndex((m) => m.id === b.masterId))];
  const redisNodes: RedisNode[] = [];
  for (const node of ordered) {
    const info = await onNode<string>(node.port, 'INFO', 'server');
    const shard = masters.findIndex((m) => m.id === (node.role === 'master' ? node.id : node.masterId)) + 1;
    redisNodes.push({
      name: `redis-${node.role === 'master' ? 'm' : 'r'}${shard}`,
      url: `redis://127.0.0.1:${node.port}`,
      pid: Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined,
      role: node.role,
      shard,
      slots: node.role === 'master' ? node.slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',') : undefined,
    });
  }
  const replicaRoot = Number(readFileSync(path.join(replica.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const replicaUrl = Object.assign(new URL(services.databaseUrl), { port: String(replica.port) }).toString();
  await replica.caughtUp(30_000);
  return {
    nodesSetting: cluster.nodesSetting,
    redisNodes,
    partitions,
    replicaUrl,
    replicaRoot,
    facts: {
      'redis cluster': `${masters.length} masters + ${ordered.length - masters.length} replicas (cluster-node-timeout 2000 ms), TURN_QUEUE_PARTITIONS=${partitions}`,
      'redis cluster nodes': cluster.nodesSetting,
      'postgres replica': `streaming hot standby of the private cluster (pg_basebackup -R, its own slot) on 127.0.0.1:${replica.port}, ${settings.join(' ')}`,
    },
  };
}
