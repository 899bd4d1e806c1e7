/**
 * `/metrics` on every process: a gateway (served on its own port) and a worker-only process (a
 * real child process, on METRICS_PORT) answer Prometheus text that a real parser reads, and one
 * turn moves each process's counters by exactly what that turn did.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { createStack, type TestStack } from './support/stack.js';
import type { RunningNode } from '../app/node.js';
import { TestClient } from './support/client.js';
import { cleanEnv, run, type Child } from './support/process.js';
import { scrape, total, type Scrape } from './support/metrics-scrape.js';
import { waitFor } from './support/wait.js';

interface Ctx {
  stack: TestStack;
  gateway: RunningNode;
  worker: Child;
  gatewayMetrics: string;
  workerMetrics: string;
}

const test = suite<Ctx>('metrics');

test.before(async (ctx) => {
  ctx.stack = await createStack();
  ctx.gateway = await ctx.stack.start({ gateway: true, worker: false });
  ctx.gatewayMetrics = `http://127.0.0.1:${ctx.gateway.gateway!.port}/metrics`;
  ctx.worker = run('node', ['--import', 'tsx', 'app/main.ts', 'worker'], cleanEnv({ ...ctx.stack.env, METRICS_PORT: '0', LOG_LEVEL: 'info' }));
  const started = await ctx.worker.waitFor(/^.*"msg":"started".*$/m, 30_000);
  const port = /"metrics_port":(\d+)/.exec(started[0])?.[1];
  assert.ok(port, `the worker's start-up line names its metrics port: ${started[0]}`);
  ctx.workerMetrics = `http://127.0.0.1:${port}/metrics`;
});

test.after(async (ctx) => {
  ctx.worker?.kill('SIGTERM');
  await ctx.worker?.exited(20_000).catch(() => ctx.worker.kill('SIGKILL'));
  await ctx.stack?.close();
});

const OWN_FAMILIES = [
  'convo_connections_open', 'convo_connections_opened_total', 'convo_connections_closed_total', 'convo_frames_in_total',
  'convo_frame_bytes_in_total', 'convo_frames_out_total', 'convo_frame_bytes_out_total', 'convo_errors_sent_total',
  'convo_backpressure_closes_total', 'convo_replay_events', 'convo_fanout_lag_seconds', 'convo_turns_total',
  'convo_turn_duration_seconds', 'convo_queue_wait_seconds', 'convo_time_to_first_delta_seconds', 'convo_events_appended_total',
  'convo_append_batch_events', 'convo_append_batch_seconds', 'convo_events_published_total', 'convo_db_statement_seconds',
  'convo_db_errors_total', 'convo_redis_errors_total',
];
const DEFAULT_FAMILIES = ['convo_process_cpu_seconds_total', 'convo_process_resident_memory_bytes', 'convo_nodejs_eventloop_lag_p99_seconds'];

function assertWellFormed(metrics: Scrape, where: string): void {
  for (const name of [...OWN_FAMILIES, ...DEFAULT_FAMILIES]) {
    const family = metrics.families.get(name);
    assert.ok(family, `${where}: ${name} is exposed`);
    assert.ok(family!.help.length > 10, `${where}: ${name} has HELP text`);
  }
  for (const family of metrics.samples.values()) {
    assert.ok(family.name.startsWith('convo_'), `${where}: ${family.name} carries the convo_ prefix`);
    for (const sample of family.metrics) {
      for (const key of Object.keys(sample.labels ?? {})) {
        assert.not.ok(/(user|thread|run|connection|workspace)/.test(key), `${where}: ${family.name} has no id label (${key})`);
      }
    }
  }
}

test('the gateway and a worker-only process serve Prometheus text with every metric, HELP and bounded labels', async (ctx) => {
  assertWellFormed(await scrape(ctx.gatewayMetrics), 'gateway');
  assertWellFormed(await scrape(ctx.workerMetrics), 'worker');
});

test('one turn moves the counters it should, on the gateway and on the worker', async (ctx) => {
  const [gw0, wk0] = await Promise.all([scrape(ctx.gatewayMetrics), scrape(ctx.workerMetrics)]);
  const client = await TestClient.connect(`ws://127.0.0.1:${ctx.gateway.gateway!.port}/v1/ws`, { token: await ctx.stack.token('metrics-alice') });
  await client.next((f) => f.type === 'session.ready');
  const ack = await client.request('message.send', { content: 'Count me [[words:12]]' });
  assert.equal(ack.type, 'ack');
  await client.completed(ack.payload.run_id, 20_000);
  const stored = await ctx.stack.db.selectFrom('threads').select('last_seq').where('id', '=', ack.payload.thread_id).executeTakeFirstOrThrow();
  const events = Number(stored.last_seq);
  assert.equal(client.events(ack.payload.thread_id).length, events, 'the client got every stored event');

  const [gw1, wk1] = await Promise.all([scrape(ctx.gatewayMetrics), scrape(ctx.workerMetrics)]);
  const delta = (a: Scrape, b: Scrape, name: string, labels?: Record<string, string>) => total(b, name, labels) - total(a, name, labels);

  // Gateway: one socket, one frame in, every frame the client got out; message_created is its append.
  assert.equal(delta(gw0, gw1, 'convo_connections_opened_total'), 1, 'gateway: connections opened');
  assert.equal(total(gw1, 'convo_connections_open'), 1, 'gateway: connections open');
  assert.equal(delta(gw0, gw1, 'convo_frames_in_total'), 1, 'gateway: frames in');
  assert.equal(delta(gw0, gw1, 'convo_frames_out_total'), client.frames.length, 'gateway: frames out = frames the client received');
  assert.ok(delta(gw0, gw1, 'convo_frame_bytes_out_total') >= client.frames.reduce((n, f) => n + JSON.stringify(f).length, 0), 'gateway: bytes out');
  assert.equal(delta(gw0, gw1, 'convo_events_appended_total'), 1, 'gateway: message_created appended');
  assert.equal(delta(gw0, gw1, 'convo_events_published_total', { result: 'ok' }), 1, 'gateway: message_created published');
  assert.equal(delta(gw0, gw1, 'convo_turns_total'), 0, 'gateway: runs no turns');
  assert.ok(delta(gw0, gw1, 'convo_db_statement_seconds') > 0, 'gateway: statements timed');
  // Each event reaches the socket live (its fan-out lag observed) or, when the worker stored it
  // before this socket's follow had caught up, in the replay that follow made (counted there).
  const replayed = (s: Scrape) => (s.samples.get('convo_replay_events_sum')?.metrics ?? []).reduce((n, sample) => n + Number(sample.value ?? 0), 0);
  const live = delta(gw0, gw1, 'convo_fanout_lag_seconds');
  assert.ok(live >= 1, 'gateway: fan-out lag observed for the live events');
  assert.ok(live + replayed(gw1) - replayed(gw0) >= events, `gateway: every event observed live (${live}) or replayed (${replayed(gw1) - replayed(gw0)}), of ${events}`);

  // Worker: the turn completed; the rest of the events were appended and published there.
  assert.equal(delta(wk0, wk1, 'convo_turns_total', { outcome: 'completed' }), 1, 'worker: turns completed');
  assert.equal(delta(wk0, wk1, 'convo_turn_duration_seconds', { outcome: 'completed' }), 1, 'worker: turn duration observed');
  assert.equal(delta(wk0, wk1, 'convo_queue_wait_seconds'), 1, 'worker: queue wait observed');
  assert.equal(delta(wk0, wk1, 'convo_time_to_first_delta_seconds'), 1, 'worker: time to first delta observed');
  assert.equal(delta(wk0, wk1, 'convo_events_appended_total'), events - 1, 'worker: events appended');
  // Group commit: the run's events went in batches (with one run in flight, about one per event;
  // its last write carries the last delta, the answer and agent_completed together).
  const batches = delta(wk0, wk1, 'convo_append_batch_events');
  assert.ok(batches >= 1 && batches <= events - 1, `worker: ${batches} batches for ${events - 1} events`);
  assert.equal(delta(wk0, wk1, 'convo_events_published_total', { result: 'ok' }), events - 1, 'worker: events published');
  assert.ok(delta(wk0, wk1, 'convo_db_statement_seconds', { kind: 'select' }) >= batches, 'worker: the appends (select append_events(...)) are timed as statements');
  assert.equal(delta(wk0, wk1, 'convo_frames_out_total'), 0, 'worker: sends no frames');

  await client.closeGracefully();
  await waitFor(async () => total(await scrape(ctx.gatewayMetrics), 'convo_connections_open') === 0, 5_000, 'connections_open back to 0');
  const gw2 = await scrape(ctx.gatewayMetrics);
  assert.equal(delta(gw1, gw2, 'convo_connections_closed_total', { code: '1000' }), 1, 'gateway: the close is counted by code');
});

test('an error frame is counted by its code', async (ctx) => {
  const before = await scrape(ctx.gatewayMetrics);
  const client = await TestClient.connect(`ws://127.0.0.1:${ctx.gateway.gateway!.port}/v1/ws`, { token: await ctx.stack.token('metrics-bob') });
  await client.next((f) => f.type === 'session.ready');
  const answer = await client.request('thread.subscribe', { thread_id: 't_does_not_exist' });
  assert.equal(answer.type, 'error');
  const after = await scrape(ctx.gatewayMetrics);
  assert.equal(total(after, 'convo_errors_sent_total', { code: answer.payload.code }) - total(before, 'convo_errors_sent_total', { code: answer.payload.code }), 1);
  client.close();
});

test('a worker-only process whose METRICS_PORT is taken does not start, and says so', async (ctx) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const child = run('node', ['--import', 'tsx', 'app/main.ts', 'worker'], cleanEnv({ ...ctx.stack.env, METRICS_PORT: String(port), LOG_LEVEL: 'silent' }));
    const code = await child.exited(30_000);
    assert.ok(code !== 0, `exit code ${code}`);
    assert.match(child.stderr(), /METRICS_PORT/);
  } finally {
    blocker.close();
  }
});

test.run();
