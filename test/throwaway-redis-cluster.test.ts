/**
 * The throwaway Redis Cluster the cluster suites and fault tests run on
 * (support/throwaway-redis-cluster.ts): it forms, a slot moves with its keys, a killed master's
 * replica takes over and the killed node rejoins, and close() leaves no process and no dir.
 */
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { Cluster } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cmdline } from './support/throwaway.js';
import { CLUSTER_SLOTS, startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';
import { within } from './support/wait.js';

const test = suite<{ cluster?: ThrowawayRedisCluster; client?: Cluster }>('throwaway redis cluster');

test.after(async (ctx) => {
  ctx.client?.disconnect();
  await ctx.cluster?.close();
});

test('forms 3 masters with a replica each, every slot served', async (ctx) => {
  const started = Date.now();
  ctx.cluster = await startThrowawayRedisCluster();
  const elapsed = Date.now() - started;
  const view = await ctx.cluster.topology();
  const masters = view.filter((node) => node.role === 'master');
  const replicas = view.filter((node) => node.role === 'replica');
  assert.is(masters.length, 3);
  assert.is(replicas.length, 3);
  for (const master of masters) assert.is(replicas.filter((r) => r.masterId === master.id).length, 1, `one replica of ${master.port}`);
  const covered = masters.flatMap((m) => m.slots).reduce((sum, [a, b]) => sum + b - a + 1, 0);
  assert.is(covered, CLUSTER_SLOTS);
  assert.ok(elapsed < 30_000, `formed in ${elapsed} ms`);
  ctx.client = new Cluster(ctx.cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })), { redisOptions: { maxRetriesPerRequest: 3 } });
  ctx.client.on('error', () => {});
});

test('migrateSlot moves a slot and its keys; clients follow', async (ctx) => {
  const cluster = ctx.cluster!;
  const client = ctx.client!;
  const key = '{moving}a';
  await client.set(key, 'one');
  await client.set('{moving}b', 'two');
  const slot = await cluster.slotOf(key);
  const before = await cluster.masterOf(slot);
  let during = false;
  const to = await cluster.migrateSlot(slot, undefined, {
    during: async () => {
      during = true;
    },
  });
  assert.ok(during, 'the hook ran while the slot was migrating');
  assert.is.not(to, before.port);
  assert.is((await cluster.masterOf(slot)).port, to);
  assert.is(await within(client.get(key), 5_000, 'GET after the move'), 'one');
  assert.is(await within(client.get('{moving}b'), 5_000, 'GET after the move'), 'two');
});

test('killMaster: the replica is promoted, writes go on, the old master rejoins as a replica', async (ctx) => {
  const cluster = ctx.cluster!;
  const client = ctx.client!;
  const key = '{failover}k';
  await client.set(key, 'before');
  const started = Date.now();
  const { killed, promoted } = await cluster.killMaster(key);
  const tookMs = Date.now() - started;
  assert.is.not(killed, promoted);
  assert.not.ok(cluster.running(killed));
  assert.is((await cluster.masterOf(key)).port, promoted);
  assert.ok(tookMs < 30_000, `promoted in ${tookMs} ms`);
  await within(client.set(key, 'after'), 10_000, 'SET after the failover');
  assert.is(await client.get(key), 'after');
  await cluster.restartNode(killed);
  const view = await cluster.topology();
  assert.is(view.find((node) => node.port === killed)?.role, 'replica', 'the old master came back as a replica');
});

test('close() stops every node and removes the dir', async (ctx) => {
  const cluster = ctx.cluster!;
  ctx.client?.disconnect();
  ctx.client = undefined;
  const pids = readdirSync(cluster.dir).filter((f) => f.endsWith('.pid')).length;
  assert.is(pids, 6);
  await cluster.close();
  await cluster.close();
  assert.not.ok(existsSync(cluster.dir));
  for (const port of cluster.ports) assert.not.ok(cluster.running(port));
  const leftovers = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => cluster.ports.some((port) => cmdline(Number(pid)).includes(`redis-server`) && cmdline(Number(pid)).includes(`:${port}`)));
  assert.equal(leftovers, []);
  assert.ok(readdirSync(os.tmpdir()).every((name) => !cluster.dir.endsWith(name)));
});

test.run();
