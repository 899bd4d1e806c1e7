/**
 * The measurement behind the broker's channel layout on a Redis Cluster (docs/operations.md, "Redis
 * Cluster"): on a throwaway 3-master cluster, per-thread channel names (no hash tag) against 16
 * partition tags as Centrifugo lays them out, in alternating order: the sharded subscriber
 * connections one client opens, SSUBSCRIBE of THREADS channels, MESSAGES SPUBLISHes of 200 bytes
 * through one auto-pipelined client until all are delivered, and how the channels sit on the masters.
 *
 *   npx tsx scripts/cluster-channel-layout.ts [threads] [messages]
 */
import { Cluster } from 'ioredis';
import { onNode, startThrowawayRedisCluster } from '../test/support/throwaway-redis-cluster.js';

const THREADS = Number(process.argv[2] ?? 5_000);
const MESSAGES = Number(process.argv[3] ?? 50_000);
const cluster = await startThrowawayRedisCluster();
const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
try {
  for (const layout of ['partitions-16', 'per-thread', 'partitions-16', 'per-thread']) {
    const run = Math.random().toString(36).slice(2, 8);
    const name = (i: number) => (layout === 'per-thread' ? `m:${run}:thread:t${i}` : `m:${run}:{p${i % 16}}:thread:t${i}`);
    const sub = new Cluster(nodes, { shardedSubscribers: true, redisOptions: { maxRetriesPerRequest: null } });
    const pub = new Cluster(nodes, { enableAutoPipelining: true });
    await new Promise((resolve) => pub.once('ready', resolve));
    let delivered = 0;
    sub.on('smessageBuffer', () => delivered++);
    let started = performance.now();
    await Promise.all(Array.from({ length: THREADS }, (_, i) => sub.ssubscribe(name(i))));
    const subscribeMs = performance.now() - started;
    let connections = 0;
    const channelsPerMaster: number[] = [];
    for (const port of cluster.ports) {
      const clients = await onNode<string>(port, 'CLIENT', 'LIST');
      connections += clients.split('\n').filter((line) => line.includes('cmd=ssubscribe')).length;
      const channels = (await onNode<string[]>(port, 'PUBSUB', 'SHARDCHANNELS', `m:${run}:*`)).length;
      if (channels > 0) channelsPerMaster.push(channels);
    }
    started = performance.now();
    await Promise.all(Array.from({ length: MESSAGES }, (_, i) => pub.spublish(name(i % THREADS), 'x'.repeat(200))));
    while (delivered < MESSAGES) await new Promise((resolve) => setTimeout(resolve, 5));
    const publishMs = performance.now() - started;
    console.log(JSON.stringify({
      layout, threads: THREADS, subscriberConnections: connections, subscribeMs: Math.round(subscribeMs),
      messages: MESSAGES, publishAndDeliverMs: Math.round(publishMs), perSecond: Math.round((MESSAGES / publishMs) * 1000), channelsPerMaster,
    }));
    sub.disconnect();
    pub.disconnect();
  }
} finally {
  await cluster.close();
}
