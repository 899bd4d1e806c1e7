import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker, type Broker } from '../broker/index.js';
import { RedisBroker } from '../broker/redis-broker.js';
import { REDIS_URL, uniquePrefix, testRedis } from './support/database.js';
import { clusterConnections, onNode, startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';
import { waitFor, within } from './support/wait.js';

/** `cluster`: Redis on a throwaway Redis Cluster (sharded pub/sub), started and removed by the suite. */
export type BrokerBackend = 'memory' | 'redis' | 'cluster';

interface Ctx {
  prefix: string;
  brokers: Broker[];
  /** A plain Redis client for asking Redis itself (redis backend only). */
  admin?: Redis;
  cluster?: ThrowawayRedisCluster;
}

/** Collects what one handler receives. */
interface Recorder {
  messages: string[];
  handler: (message: string) => void;
}

function recorder(): Recorder {
  const messages: string[] = [];
  return { messages, handler: (message) => void messages.push(message) };
}

/** Deadline for a single broker call (a subscribe, publish or unsubscribe is one round trip). */
const OP_MS = 5_000;

/**
 * The Broker contract (broker/broker.ts), run against every implementation with the same
 * assertions (broker.memory.test.ts, broker.redis.test.ts).
 */
export function brokerSuite(backend: BrokerBackend): void {
  const test = suite<Ctx>(`broker (${backend})`);

  /** A fresh broker, closed after the test. Same prefix as the suite's unless told otherwise. */
  function open(ctx: Ctx, prefix = ctx.prefix): Broker {
    const broker = backend === 'redis'
      ? createBroker({ kind: 'redis', redis: testRedis(prefix) })
      : backend === 'cluster'
        ? createBroker({ kind: 'redis', redis: clusterConnections(ctx.cluster!, prefix) })
        : createBroker({ kind: 'memory' });
    ctx.brokers.push(broker);
    return broker;
  }

  function subscribe(broker: Broker, channel: string, rec: Recorder): Promise<() => Promise<void>> {
    return within(broker.subscribe(channel, rec.handler), OP_MS, `subscribe ${channel}`);
  }

  function publish(broker: Broker, channel: string, message: string): Promise<void> {
    return within(broker.publish(channel, message), OP_MS, `publish ${channel}`);
  }

  function unsubscribe(unsub: () => Promise<void>): Promise<void> {
    return within(unsub(), OP_MS, 'unsubscribe');
  }

  /** Waits until `rec` has received `message`. */
  function received(rec: Recorder, message: string, timeoutMs = OP_MS): Promise<void> {
    return waitFor(() => rec.messages.includes(message), timeoutMs, `message ${JSON.stringify(message)} (got ${JSON.stringify(rec.messages)})`);
  }

  async function numsub(ctx: Ctx, channel: string): Promise<number> {
    if (ctx.cluster) {
      // Sharded channels are counted by the master that owns their slot.
      const master = await ctx.cluster.masterOf(ctx.prefix + channel);
      const [, count] = await within(onNode<[string, number]>(master.port, 'PUBSUB', 'SHARDNUMSUB', ctx.prefix + channel), OP_MS, 'PUBSUB SHARDNUMSUB');
      return Number(count);
    }
    const reply = (await within(ctx.admin!.pubsub('NUMSUB', ctx.prefix + channel), OP_MS, 'PUBSUB NUMSUB')) as [string, number];
    return Number(reply[1]);
  }

  test.before(async (ctx) => {
    ctx.prefix = uniquePrefix();
    ctx.brokers = [];
    if (backend === 'redis') {
      ctx.admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      ctx.admin.on('error', () => {});
    }
    if (backend === 'cluster') ctx.cluster = await startThrowawayRedisCluster();
  });
  test.after.each(async (ctx) => {
    await within(Promise.all(ctx.brokers.splice(0).map((b) => b.close())), OP_MS, 'closing the brokers');
  });
  test.after(async (ctx) => {
    await within(Promise.all(ctx.brokers.splice(0).map((b) => b.close())), OP_MS, 'closing the brokers');
    if (ctx.admin) await within(ctx.admin.quit(), OP_MS, 'closing the admin client');
    await ctx.cluster?.close();
  });

  test('a message published after subscribe() resolved is delivered: 500 on one channel arrive in order', async (ctx) => {
    // A fresh broker: the first subscribe may race the connection coming up.
    const broker = open(ctx);
    const rec = recorder();
    await subscribe(broker, 'thread:order', rec);
    const expected = Array.from({ length: 500 }, (_, i) => `m${i}`);
    // Published back to back, without waiting for each: order is per channel, not per round trip.
    await within(Promise.all(expected.map((m) => broker.publish('thread:order', m))), 10_000, 'publishing 500 messages');
    await waitFor(() => rec.messages.length >= expected.length, 10_000, `500 messages (got ${rec.messages.length})`);
    assert.equal(rec.messages, expected, 'every message, once, in publish order');
  });

  test('a subscribe() that resolves while another subscribe of the same channel is in flight is active too', async (ctx) => {
    const broker = open(ctx);
    const first = recorder();
    const second = recorder();
    const pendingFirst = subscribe(broker, 'thread:race', first);
    await subscribe(broker, 'thread:race', second);
    // Published after the second subscribe resolved: the contract says it is delivered to it.
    await publish(broker, 'thread:race', 'early');
    await pendingFirst;
    await publish(broker, 'thread:race', 'late');
    await received(second, 'late');
    // 'late' was published after 'early' on the same channel: had 'early' been delivered, it came first.
    assert.equal(second.messages, ['early', 'late'], 'the message published after subscribe() resolved was delivered');
    await received(first, 'late');
  });

  test('two handlers on one channel both receive; unsubscribing one leaves the other; after the last nothing is delivered', async (ctx) => {
    const broker = open(ctx);
    const a = recorder();
    const b = recorder();
    const control = recorder();
    const unsubA = await subscribe(broker, 'thread:shared', a);
    const unsubB = await subscribe(broker, 'thread:shared', b);
    await subscribe(broker, 'thread:control', control);

    await publish(broker, 'thread:shared', 'one');
    await received(a, 'one');
    await received(b, 'one');

    await unsubscribe(unsubA);
    await publish(broker, 'thread:shared', 'two');
    await received(b, 'two');
    assert.equal(a.messages, ['one'], 'the unsubscribed handler got nothing more');
    assert.equal(b.messages, ['one', 'two'], 'the remaining handler keeps receiving');

    await unsubscribe(unsubB);
    await publish(broker, 'thread:shared', 'three');
    // Same publisher, published afterwards: once this arrives, 'three' would have arrived before it.
    await publish(broker, 'thread:control', 'after-three');
    await received(control, 'after-three');
    assert.equal(a.messages, ['one']);
    assert.equal(b.messages, ['one', 'two'], 'nothing is delivered after the last unsubscribe');
    assert.equal(control.messages, ['after-three']);
  });

  test('channels are isolated', async (ctx) => {
    const broker = open(ctx);
    const a = recorder();
    const b = recorder();
    const ab = recorder();
    await subscribe(broker, 'thread:a', a);
    await subscribe(broker, 'thread:b', b);
    await subscribe(broker, 'thread:ab', ab);
    await publish(broker, 'thread:a', 'for-a');
    await publish(broker, 'thread:b', 'for-b');
    await publish(broker, 'thread:ab', 'for-ab');
    // Each channel's last message arriving means everything published before it was delivered.
    await received(a, 'for-a');
    await received(b, 'for-b');
    await received(ab, 'for-ab');
    await publish(broker, 'thread:a', 'a-again');
    await received(a, 'a-again');
    assert.equal(a.messages, ['for-a', 'a-again']);
    assert.equal(b.messages, ['for-b'], 'a message on thread:a never reaches thread:b');
    assert.equal(ab.messages, ['for-ab'], 'nor a channel whose name merely starts the same');
  });

  test('the unsubscribe function is idempotent', async (ctx) => {
    const broker = open(ctx);
    const a = recorder();
    const b = recorder();
    const control = recorder();
    await subscribe(broker, 'thread:control', control);
    const unsubA = await subscribe(broker, 'thread:idem', a);
    const unsubB = await subscribe(broker, 'thread:idem', b);

    await Promise.all([unsubscribe(unsubA), unsubscribe(unsubA)]);
    await unsubscribe(unsubA);
    await publish(broker, 'thread:idem', 'one');
    await received(b, 'one');
    assert.equal(a.messages, [], 'a is unsubscribed');
    assert.equal(b.messages, ['one'], 'repeated calls for a did not touch b');

    // The same handler subscribed again: a stale unsubscribe from before must not cancel it.
    const unsubA2 = await subscribe(broker, 'thread:idem', a);
    await unsubscribe(unsubA);
    await publish(broker, 'thread:idem', 'two');
    await received(b, 'two');
    await received(a, 'two');
    assert.equal(a.messages, ['two'], 'the newer subscription of the same handler still receives');

    // The channel's last handlers, unsubscribed again after it is gone.
    await unsubscribe(unsubA2);
    await unsubscribe(unsubB);
    await Promise.all([unsubscribe(unsubB), unsubscribe(unsubA2), unsubscribe(unsubA)]);
    await publish(broker, 'thread:idem', 'three');
    await publish(broker, 'thread:control', 'after-three');
    await received(control, 'after-three');
    assert.equal(a.messages, ['two']);
    assert.equal(b.messages, ['one', 'two']);
  });

  test('ping() resolves; close() twice is safe', async (ctx) => {
    const broker = open(ctx);
    await within(broker.ping(), OP_MS, 'ping');
    await within(Promise.all([broker.close(), broker.close()]), OP_MS, 'close twice at once');
    await within(broker.close(), OP_MS, 'close a third time');
  });

  // Cross-process fan-out and the Redis-side bookkeeping exist only with Redis.
  if (backend !== 'memory') {
    test('two brokers with the same prefix see each other\'s messages', async (ctx) => {
      const first = open(ctx);
      const second = open(ctx);
      const onFirst = recorder();
      const onSecond = recorder();
      await subscribe(first, 'thread:fanout', onFirst);
      await subscribe(second, 'thread:fanout', onSecond);
      await publish(first, 'thread:fanout', 'from-first');
      await publish(second, 'thread:fanout', 'from-second');
      await received(onFirst, 'from-second');
      await received(onSecond, 'from-second');
      assert.equal(onFirst.messages, ['from-first', 'from-second']);
      assert.equal(onSecond.messages, ['from-first', 'from-second']);
    });

    test('two brokers with different prefixes do not', async (ctx) => {
      const mine = open(ctx);
      const theirs = open(ctx, uniquePrefix());
      const onMine = recorder();
      const onTheirs = recorder();
      await subscribe(mine, 'thread:x', onMine);
      await subscribe(theirs, 'thread:x', onTheirs);
      await publish(mine, 'thread:x', 'mine-1');
      await publish(theirs, 'thread:x', 'theirs-1');
      await publish(mine, 'thread:x', 'mine-2');
      await received(onMine, 'mine-2');
      await received(onTheirs, 'theirs-1');
      // Every publish finished before the next began, so a message that crossed over would arrive
      // before the later ones each side waited for: mine-1 before theirs-1, theirs-1 before mine-2,
      // mine-2 before theirs-2.
      await publish(theirs, 'thread:x', 'theirs-2');
      await received(onTheirs, 'theirs-2');
      assert.equal(onMine.messages, ['mine-1', 'mine-2'], 'only its own prefix');
      assert.equal(onTheirs.messages, ['theirs-1', 'theirs-2'], 'only its own prefix');
    });

    test('after all handlers of a channel are gone, Redis has no subscription for it and channelCount is 0', async (ctx) => {
      const broker = open(ctx);
      assert.ok(broker instanceof RedisBroker);
      const redisBroker = broker as RedisBroker;
      const a = recorder();
      const b = recorder();
      const c = recorder();
      const unsubA = await subscribe(broker, 'thread:x', a);
      const unsubB = await subscribe(broker, 'thread:x', b);
      const unsubC = await subscribe(broker, 'thread:y', c);
      assert.equal(await numsub(ctx, 'thread:x'), 1, 'one Redis subscription however many handlers');
      assert.equal(await numsub(ctx, 'thread:y'), 1);
      assert.equal(redisBroker.channelCount, 2);

      await unsubscribe(unsubA);
      assert.equal(await numsub(ctx, 'thread:x'), 1, 'still wanted by b');
      await unsubscribe(unsubB);
      assert.equal(await numsub(ctx, 'thread:x'), 0, 'thread:x is unsubscribed on Redis');
      assert.equal(redisBroker.channelCount, 1);
      await unsubscribe(unsubC);
      assert.equal(await numsub(ctx, 'thread:y'), 0, 'thread:y is unsubscribed on Redis');
      assert.equal(redisBroker.channelCount, 0);

      // Unsubscribing the last handler while a new one subscribes: the newcomer stays subscribed.
      const d = recorder();
      const unsubD = await subscribe(broker, 'thread:x', d);
      const leaving = unsubscribe(unsubD);
      const e = recorder();
      const unsubE = await subscribe(broker, 'thread:x', e);
      await leaving;
      assert.equal(await numsub(ctx, 'thread:x'), 1, 'the newcomer keeps the channel subscribed');
      await publish(broker, 'thread:x', 'to-e');
      await received(e, 'to-e');
      assert.equal(d.messages, []);
      await unsubscribe(unsubE);
      assert.equal(await numsub(ctx, 'thread:x'), 0);
      assert.equal(redisBroker.channelCount, 0);
    });
  }

  if (backend === 'cluster') {
    test('a slot migration during a subscription: messages before and after arrive, the move is reported as a reconnect', async (ctx) => {
      const cluster = ctx.cluster!;
      const broker = open(ctx);
      const other = open(ctx);
      const rec = recorder();
      const reconnects: number[] = [];
      broker.onReconnect(() => reconnects.push(Date.now()));
      await subscribe(broker, 'thread:migrating', rec);
      await publish(other, 'thread:migrating', 'before');
      await received(rec, 'before');
      const slot = await cluster.slotOf(ctx.prefix + 'thread:migrating');
      const from = (await cluster.masterOf(slot)).port;
      const moved = Date.now();
      await cluster.migrateSlot(slot, undefined, {
        // While the slot is migrating, its channels are still served by the source.
        during: () => publish(other, 'thread:migrating', 'during'),
      });
      await received(rec, 'during');
      // Published after the move: the publisher is redirected (MOVED) and the subscriber must have
      // followed the slot to its new master. What is published before it has is lost (Redis keeps
      // no history); the reconnect report is what tells the fan-out to re-read the log.
      let n = 0;
      await waitFor(
        async () => {
          await publish(other, 'thread:migrating', `after-${n++}`);
          return rec.messages.some((m) => m.startsWith('after-'));
        },
        15_000,
        () => `a message published after the move from ${from} (got ${JSON.stringify(rec.messages)})`,
        100,
      );
      await waitFor(() => reconnects.some((at) => at >= moved), 15_000, 'the move reported through onReconnect');
      const first = rec.messages.findIndex((m) => m.startsWith('after-'));
      const lost = Number(rec.messages[first]!.slice('after-'.length));
      // Every message from the first one received on: none lost, none twice, in order.
      await publish(other, 'thread:migrating', 'last');
      await received(rec, 'last');
      assert.equal(rec.messages.slice(0, 2), ['before', 'during']);
      assert.equal(rec.messages.slice(first), [...Array.from({ length: n - lost }, (_, i) => `after-${lost + i}`), 'last']);
      const reported = reconnects.find((at) => at >= moved)!;
      console.log(`  slot ${slot} moved from ${from}: subscription live again after ${lost} lost publishes, reported ${reported - moved} ms after the move began`);
    });
  }

  test.run();
}
