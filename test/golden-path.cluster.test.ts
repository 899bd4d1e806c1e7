/**
 * The golden path on a Redis Cluster (REDIS_CLUSTER_NODES, a throwaway 3-master cluster): a
 * gateway-only node and a worker-only node, so every event crosses sharded pub/sub and every turn a
 * partitioned, hash-tagged BullMQ queue. A ticket is issued and redeemed; turns on threads spread
 * over the partitions stream gap-free and equal the log; a thread's channel moved to another master
 * mid-turn still reaches its client whole (the move is reported, the gap filled from the log).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { partitionOf } from '../queue/turn-partitions.js';
import { CLUSTER_TURN_QUEUE_PARTITIONS } from '../config/redis-config.js';
import { TestClient } from './support/client.js';
import { useClusterStack, type ClusterCtx } from './support/cluster-fixture.js';
import { RestClient } from './support/rest-client.js';
import { assertClientMatchesLog, assertRunRebuilds } from './support/run-checks.js';

const test = suite<ClusterCtx>('golden path (redis cluster)');
useClusterStack(test, { sim: { tokenDelayMs: 5 } });

async function ticketClient(ctx: ClusterCtx, sub: string): Promise<TestClient> {
  const issued = await new RestClient(ctx.base, await ctx.stack.token(sub)).post('/v1/ws-ticket');
  assert.is(issued.status, 201, JSON.stringify(issued.body));
  const client = await TestClient.connect(`${ctx.url}?ticket=${encodeURIComponent(issued.body.ticket)}`);
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  return client;
}

test('a ticket is redeemed once; turns on threads over several partitions stream gap-free and equal the log', async (ctx) => {
  const client = await ticketClient(ctx, 'alice');
  const partitions = new Set<number>();
  const acks = [];
  for (let i = 0; i < 6; i++) {
    const ack = await client.request('message.send', { content: `Turn ${i} on the cluster [[words:20]]` });
    assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
    partitions.add(partitionOf(ack.payload.thread_id, CLUSTER_TURN_QUEUE_PARTITIONS));
    acks.push(ack);
  }
  for (const ack of acks) {
    const done = await client.completed(ack.payload.run_id, 20_000);
    assert.is(done.payload.status, 'completed');
    const events = await assertClientMatchesLog(ctx.stack.db, client, ack.payload.thread_id);
    assertRunRebuilds(events, ack.payload.run_id);
  }
  assert.ok(partitions.size >= 2, `six threads over ${partitions.size} partitions`);
  // A second turn on a thread: its partition is the same, and it runs after the first.
  const again = await client.request('message.send', { thread_id: acks[0]!.payload.thread_id, content: 'Once more [[words:10]]' });
  assert.is((await client.completed(again.payload.run_id, 20_000)).payload.status, 'completed');
  await assertClientMatchesLog(ctx.stack.db, client, acks[0]!.payload.thread_id);
});

test('the thread channel\'s slot moves to another master mid-turn: the client still gets every event once, in order', async (ctx) => {
  const client = await ticketClient(ctx, 'bob');
  const first = await client.request('message.send', { content: 'Start a thread [[words:5]]' });
  await client.completed(first.payload.run_id, 20_000);
  const threadId = first.payload.thread_id as string;
  const ack = await client.request('message.send', { thread_id: threadId, content: 'A long answer [[words:200]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  await client.next((f) => f.type === 'message_delta' && f.payload.run_id === ack.payload.run_id, 20_000);
  const slot = await ctx.cluster.slotOf(`${ctx.stack.prefix}thread:${threadId}`);
  await ctx.cluster.migrateSlot(slot);
  const done = await client.completed(ack.payload.run_id, 30_000);
  assert.is(done.payload.status, 'completed');
  const events = await assertClientMatchesLog(ctx.stack.db, client, threadId);
  assertRunRebuilds(events, ack.payload.run_id);
});

test.run();
