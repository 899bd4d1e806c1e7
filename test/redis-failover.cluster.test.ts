/**
 * A Redis Cluster master killed with SIGKILL while turns stream (a throwaway 3-master cluster with
 * a replica each, cluster-node-timeout 2 s, so the replica is promoted a few seconds later). A
 * gateway-only node and a worker-only node, as deployed; Postgres is the shared server. What must
 * hold:
 *  - every turn streaming when the master dies completes, and every client gets every event of its
 *    thread exactly once, in order, equal to the log (events published into the dead master's
 *    channels are lost by Redis: the gateway re-syncs from the log by seq once its sharded
 *    subscriber is back on the promoted replica);
 *  - a message sent during the failover is either refused as retryable (`unavailable`) or acked
 *    and then really run; nothing is left queued or running;
 *  - a run whose job was lost (acked, stored, but its job gone with an unreplicated write) is found
 *    by the worker's sweep of queued runs without a live job and enqueued again on its partition.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { threadChannel } from '../broker/index.js';
import { RedisBroker } from '../broker/redis-broker.js';
import pino from 'pino';
import { recordTurn } from '../db/turns.repository.js';
import { connect } from './support/fixture.js';
import { useClusterStack, type ClusterCtx } from './support/cluster-fixture.js';
import { assertClientMatchesLog, assertRunRebuilds, readyBecomes } from './support/run-checks.js';
import type { Frame, TestClient } from './support/client.js';
import { clusterConnections } from './support/throwaway-redis-cluster.js';
import { sleep, waitFor } from './support/wait.js';

const test = suite<ClusterCtx>('redis cluster failover');
// The nodes' log lines are kept (stack.logs): the sweep's own line says it enqueued the lost run.
useClusterStack(test, { sim: { tokenDelayMs: 0 }, env: { LOG_LEVEL: 'info' } });

const deltasOf = (client: TestClient, threadId: string) => client.events(threadId).filter((e) => e.type === 'message_delta').length;
/** Milliseconds of an event's `timestamp` (the log's clock). */
const at = (event: Frame) => Date.parse(event.payload.timestamp);

async function runsLeftOpen(ctx: ClusterCtx, threadIds: string[]): Promise<Array<{ id: string; status: string }>> {
  if (threadIds.length === 0) return [];
  return ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('thread_id', 'in', threadIds).where('status', 'in', ['queued', 'running']).execute();
}

test('a failover re-syncs a broker\'s followers once, after its channels are live again on the promoted replica', async (ctx) => {
  const prefix = `${ctx.stack.prefix}probe:`;
  const broker = new RedisBroker(clusterConnections(ctx.cluster, prefix), pino({ level: 'silent' }));
  const publisher = new RedisBroker(clusterConnections(ctx.cluster, prefix), pino({ level: 'silent' }));
  try {
    const received = new Map<string, string[]>();
    const channels = Array.from({ length: 20 }, (_, i) => `thread:probe-${i}`);
    for (const channel of channels) await broker.subscribe(channel, (message) => received.set(channel, [...(received.get(channel) ?? []), message]));
    const resyncs: number[] = [];
    // Listeners read the log at once: every channel must be live again by then.
    let liveAtResync = true;
    broker.onReconnect(() => {
      resyncs.push(Date.now());
      liveAtResync &&= broker.channelCount === channels.length;
    });
    const failover = ctx.cluster.killMaster(await ctx.cluster.slotOf(prefix + channels[0]), 30_000);
    // Published into the dead master's shard: a publish that fails there is published again once
    // the replica is promoted, with nothing published on the channel after it (a turn's last
    // events), though the publisher's connection never stopped being ready. (Whether a subscriber
    // hears it depends on its own re-subscription; what it missed, it reads from the log.)
    await sleep(200);
    const during = await publisher.publish(channels[0]!, 'during').then(() => 'sent', () => 'failed');
    const { killed } = await failover;
    await waitFor(() => resyncs.length > 0, 10_000, 'the re-sync after the failover');
    await waitFor(() => publisher.unpublishedCount === 0, 15_000, `the message whose publish ${during} during the failover, published again`);
    await sleep(2_000); // a threshold to pass: no second re-sync comes after the first
    assert.is(resyncs.length, 1, `one re-sync per failover, not ${resyncs.length}`);
    assert.ok(liveAtResync, 'every channel was subscribed when the listeners ran');
    // Every channel is live on its (possibly new) master: a message on each arrives.
    for (const channel of channels) await publisher.publish(channel, `after-${channel}`);
    await waitFor(() => channels.every((channel) => received.get(channel)?.includes(`after-${channel}`)), 5_000, 'a message on every channel after the failover');
    await ctx.cluster.restartNode(killed, 30_000); // back as a replica, for the next failover
  } finally {
    await Promise.all([broker.close(), publisher.close()]);
  }
});

test('a master killed mid-turn: every streaming turn completes, every client gets every event once, sends during the failover run or are refused as retryable', async (ctx) => {
  const clients = await Promise.all(['ann', 'ben', 'cat', 'dan'].map((sub) => connect(ctx, `failover-${sub}`)));
  // Each client's thread on its own channel (and so, most likely, its own slot); long, slow answers.
  const turns = await Promise.all(
    clients.map(async (client, i) => {
      const ack = await client.request('message.send', { content: `Story ${i}, long and slow [[words:160]] [[delay:25]]` });
      assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
      return { client, threadId: ack.payload.thread_id as string, runId: ack.payload.run_id as string };
    }),
  );
  await Promise.all(turns.map((t) => t.client.until(() => deltasOf(t.client, t.threadId) >= 3, 20_000, 'some deltas')));

  // The master of the first thread's channel dies: its events must cross the failover.
  const victim = turns[0]!;
  const slot = await ctx.cluster.slotOf(`${ctx.stack.prefix}${threadChannel(victim.threadId)}`);
  const killedAt = Date.now();
  const failover = ctx.cluster.killMaster(slot, 30_000);
  // Sends while the master is gone (before its replica is promoted): each is acked or refused as retryable.
  await sleep(300);
  const during = await Promise.all(
    clients.map((client, i) => client.request('message.send', { content: `Sent during the failover ${i} [[words:12]]`, client_message_id: `during-${i}` }, 20_000)),
  );
  const { killed, promoted } = await failover;
  const promotedAt = Date.now();
  assert.ok(killed !== promoted, 'a replica took over');

  for (const t of turns) {
    const done = await t.client.completed(t.runId, 60_000);
    assert.is(done.payload.status, 'completed', `the streaming turn completed: ${JSON.stringify(done.payload.error ?? {})}`);
  }
  // A refused send is retried as a client would: same client_message_id, after retry_after_ms.
  const acks: Array<{ client: TestClient; frame: Frame }> = [];
  for (const [i, answer] of during.entries()) {
    let current = answer;
    const deadline = Date.now() + 30_000;
    while (current.type === 'error') {
      assert.is(current.payload.code, 'unavailable', `a refusal during the failover is retryable: ${JSON.stringify(current.payload)}`);
      assert.ok(Date.now() < deadline, 'a refused send is accepted again within 30 s');
      await sleep(current.payload.retry_after_ms ?? 1_000); // the refusal's own retry hint
      current = await clients[i]!.request('message.send', { content: `Sent during the failover ${i} [[words:12]]`, client_message_id: `during-${i}` }, 20_000);
    }
    assert.is(current.type, 'ack');
    acks.push({ client: clients[i]!, frame: current });
  }
  // Acked turns run, even one whose job was lost with the dead master (the sweep enqueues it again).
  for (const { client, frame } of acks) {
    const done = await client.completed(frame.payload.run_id, 60_000);
    assert.is(done.payload.status, 'completed', `the turn sent during the failover ran: ${JSON.stringify(done.payload.error ?? {})}`);
  }

  const threadIds = [...new Set([...turns.map((t) => t.threadId), ...acks.map((a) => a.frame.payload.thread_id as string)])];
  for (const t of turns) {
    const events = await assertClientMatchesLog(ctx.stack.db, t.client, t.threadId);
    const runIds = [...new Set(events.map((e) => e.payload.run_id).filter(Boolean))] as string[];
    for (const runId of runIds) assertRunRebuilds(events, runId);
    assert.ok(t.client.closeCode === undefined, 'the socket stayed open');
  }
  for (const { client, frame } of acks) {
    const events = await assertClientMatchesLog(ctx.stack.db, client, frame.payload.thread_id);
    assertRunRebuilds(events, frame.payload.run_id);
  }
  // The fault really hit the victim's turn: some of its events were stored while its channel's
  // master was dead, and reached the client only through the gateway's re-sync from the log.
  const victimEvents = victim.client.events(victim.threadId);
  assert.ok(victimEvents.some((e) => at(e) > killedAt && at(e) < promotedAt), 'some events were stored during the failover');
  // One message and one run per client_message_id, however many tries it took.
  for (const [i, { frame }] of acks.entries()) {
    const rows = await ctx.stack.db
      .selectFrom('messages')
      .select('run_id')
      .where('client_message_id', '=', `during-${i}`)
      .where('role', '=', 'user')
      .where('thread_id', '=', frame.payload.thread_id)
      .execute();
    assert.equal(rows, [{ run_id: frame.payload.run_id }], `send ${i}: one message, one run`);
  }
  assert.equal(await runsLeftOpen(ctx, threadIds), [], 'nothing is left queued or running');
  await readyBecomes(ctx.base, 200, 15_000);
});

test('a run whose job was lost is found by the sweep and enqueued again on its partition', async (ctx) => {
  const client = await connect(ctx, 'failover-lost');
  const first = await client.request('message.send', { content: 'Start a thread [[words:5]]' });
  assert.is(first.type, 'ack');
  await client.completed(first.payload.run_id, 30_000);
  const threadId = first.payload.thread_id as string;
  // Stored and acked as message.send does, but its job never reaches Redis (lost with a master's
  // unreplicated write): only the sweep can start it.
  const lost = await recordTurn(ctx.stack.db, { workspaceId: 'acme', userId: 'failover-lost' }, { threadId, content: 'A turn whose job was lost [[words:8]]' });
  const done = await client.completed(lost.runId, 45_000);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload.error ?? {}));
  // Nothing but a sweep enqueues a run that has no job (the thread's earlier turn had ended before
  // it was stored, so no wake-up either): the periodic one (queued runs older than 10 s) or the
  // one a broker reconnect runs at once.
  const swept = ctx.stack.logs.filter((line) => line.msg === 're-enqueuing a stranded run' && line.run_id === lost.runId);
  assert.ok(swept.length >= 1, 'the sweep enqueued the lost run');
  const events = await assertClientMatchesLog(ctx.stack.db, client, threadId);
  assertRunRebuilds(events, lost.runId);
  await waitFor(async () => (await runsLeftOpen(ctx, [threadId])).length === 0, 5_000, 'no run left open');
});

test.run();
