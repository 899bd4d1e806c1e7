/**
 * The fixture of the suites that run a stack on a throwaway Redis Cluster (REDIS_CLUSTER_NODES, 3
 * masters with a replica each): a gateway-only node and a worker-only node, as deployed, so every
 * event crosses sharded pub/sub and every turn a partitioned queue. Clients are closed after each
 * test; the stack, then the cluster, after the last.
 */
import type { Test } from 'uvu';
import type { RunningNode } from '../../app/node.js';
import type { LlmSimOptions } from '../../workers/llm-sim.js';
import type { StackCtx } from './fixture.js';
import { restBase } from './rest-client.js';
import { createStack } from './stack.js';
import { startThrowawayRedisCluster, type ThrowawayRedisCluster } from './throwaway-redis-cluster.js';

export interface ClusterCtx extends StackCtx {
  cluster: ThrowawayRedisCluster;
  /** The worker-only node (the suite's `node` is the gateway). */
  worker: RunningNode;
}

export function useClusterStack<C extends ClusterCtx>(test: Test<C>, options: { sim?: LlmSimOptions; env?: Record<string, string> } = {}): void {
  test.before(async (ctx) => {
    ctx.clients = [];
    ctx.cluster = await startThrowawayRedisCluster();
    ctx.stack = await createStack({ env: { REDIS_URL: '', REDIS_CLUSTER_NODES: ctx.cluster.nodesSetting, ...options.env }, sim: options.sim });
    ctx.node = await ctx.stack.start({ gateway: true, worker: false });
    ctx.worker = await ctx.stack.start({ gateway: false, worker: true });
    ctx.url = ctx.stack.wsUrl(ctx.node);
    ctx.base = restBase(ctx.node);
  });
  test.after.each((ctx) => {
    for (const client of ctx.clients.splice(0)) client.close();
  });
  test.after(async (ctx) => {
    await ctx.stack?.close();
    await ctx.cluster?.close();
  });
}
