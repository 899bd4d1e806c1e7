/** The Redis settings (config/redis-config.ts): one node or a cluster, the prefix, the turn queues. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadConfig } from '../config/config.js';

const test = suite('redis config');

function refused(env: Record<string, string>, setting: string, message: RegExp): void {
  try {
    loadConfig(env);
    assert.unreachable(`accepted ${JSON.stringify(env)}`);
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.is((error as ConfigError).setting, setting);
    assert.match((error as Error).message, message);
  }
}

test('REDIS_CLUSTER_NODES: host:port entries, names and IPv6 included', () => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b.internal:7001,[::1]:7002 ' });
  assert.equal(config.redisClusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b.internal', port: 7001 },
    { host: '::1', port: 7002 },
  ]);
  assert.is(config.redisUrl, undefined);
});

test('REDIS_CLUSTER_NODES with REDIS_URL, or with an entry that is not host:port, is refused naming it', () => {
  refused({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, 'REDIS_CLUSTER_NODES', /REDIS_URL are both set/);
  for (const bad of ['127.0.0.1', '127.0.0.1:', ':7000', '127.0.0.1:0', '127.0.0.1:70000', 'redis://127.0.0.1:7000', '127.0.0.1:7000,,127.0.0.1:7001', 'a b:7000']) {
    refused({ REDIS_CLUSTER_NODES: bad }, 'REDIS_CLUSTER_NODES', /is not host:port/);
  }
});

test('REDIS_PREFIX with a hash tag is refused on a cluster only', () => {
  refused({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_PREFIX: '{app}:' }, 'REDIS_PREFIX', /must not contain '\{' or '\}'/);
  assert.is(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: '{app}:' }).redisPrefix, '{app}:');
  assert.is(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_PREFIX: 'app:' }).redisPrefix, 'app:');
});

test('TURN_QUEUE_PARTITIONS: 1 on one node, 6 on a cluster, or as set', () => {
  assert.is(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).turnQueuePartitions, 1);
  assert.is(loadConfig({}).turnQueuePartitions, 1);
  assert.is(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).turnQueuePartitions, 6);
  assert.is(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', TURN_QUEUE_PARTITIONS: '4' }).turnQueuePartitions, 4);
  refused({ TURN_QUEUE_PARTITIONS: '0' }, 'TURN_QUEUE_PARTITIONS', /whole number from 1 to 1024/);
});

test.run();
