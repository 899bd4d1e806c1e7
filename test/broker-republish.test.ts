/**
 * A publisher cut off from Redis while its subscribers stay connected (a worker's connection
 * dropped, not Redis): the publish fails, and once the publisher is back the channel's latest
 * failed message is published again, so gateways learn of the last events of a turn (and fill
 * what came before from the log). The cut is real: the publisher reaches Redis through a TCP relay
 * that the test closes and reopens.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { REDIS_URL, uniquePrefix, testRedis } from './support/database.js';
import { sleep, waitFor } from './support/wait.js';

/** A TCP relay to Redis that can drop every connection and refuse new ones until restored. */
async function relay(target: URL) {
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      sockets.add(a);
      a.on('close', () => sockets.delete(a));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      open = true;
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

const test = suite('broker: republish after a cut');

test('the latest message a cut-off publisher failed to send reaches subscribers once it reconnects', async () => {
  const prefix = uniquePrefix();
  const proxy = await relay(new URL(REDIS_URL));
  const subscriber = createBroker({ kind: 'redis', redis: testRedis(prefix) });
  const publisher = createBroker({ kind: 'redis', redis: testRedis(prefix, proxy.url) });
  try {
    const got: string[] = [];
    await subscriber.subscribe('thread:t1', (message) => got.push(message));
    await publisher.publish('thread:t1', '1\n{"first":true}');
    await waitFor(() => got.length === 1, 5_000, 'the first message');

    proxy.cut();
    await waitFor(async () => publisher.ping().then(() => false, () => true), 5_000, 'the publisher is cut off');
    for (const seq of [2, 3, 4]) {
      const failed = await publisher.publish('thread:t1', `${seq}\n{}`).then(() => false, () => true);
      assert.ok(failed, `publish ${seq} fails while cut off`);
    }
    assert.equal(got, ['1\n{"first":true}'], 'nothing arrived meanwhile');

    proxy.restore();
    await waitFor(() => got.length === 2, 10_000, 'the latest failed message, once the publisher is back');
    assert.equal(got[1], '4\n{}', 'only the latest: a gateway fills 2 and 3 from the log');
    // A later publish goes through as usual, and nothing is repeated.
    await publisher.publish('thread:t1', '5\n{}');
    await waitFor(() => got.length === 3, 5_000, 'the next message');
    // A window in which nothing may arrive: a repeated message would show up here.
    await sleep(300);
    assert.equal(got.slice(1), ['4\n{}', '5\n{}']);
  } finally {
    await publisher.close();
    await subscriber.close();
    await proxy.close();
  }
});

test.run();
