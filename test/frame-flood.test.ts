// @run-alone: asserts ping latency and stalls during a flood (scripts/test.mjs runs it after the others, with nothing beside it)
/**
 * One user's bad frames cost that user, not the gateway. A gateway runs in a process of its own
 * with the default limits; a flooder in another process (test/support/frame-flooder.ts) opens 30
 * sockets of one user that send about 4,700 malformed or expensive frames a second (four in ten a
 * 50 KB frame of 4,000 keys), each socket connecting again at once after every close or refusal.
 * Meanwhile another user pings every 25 ms, as it did before the flood. Its ping p99 must stay
 * within twice the quiet p99 + 50 ms, no event-loop stall of the gateway (its own monitor, read
 * from /metrics) may pass 200 ms, the wide frame is refused before it is parsed, and the flooder's
 * reconnects after its policy closes (4008) are refused.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createStack, type TestStack } from './support/stack.js';
import { cleanEnv, run, type Child } from './support/process.js';
import { TestClient } from './support/client.js';
import { scrape, total, type Scrape } from './support/metrics-scrape.js';
import { sleep } from './support/wait.js';
import { MOST_FRAME_VALUES, parseClientFrame } from '../protocol/validate.js';

const QUIET_MS = 4_000;
const FLOOD_MS = 10_000;
const PING_EVERY_MS = 25;

interface Ctx {
  stack: TestStack;
  children: Child[];
  clients: TestClient[];
}

interface FloodResult {
  wideBytes: number;
  sent: Record<string, number>;
  opened: number;
  refused: Record<string, number>;
  closes: Record<string, number>;
  errors: Record<string, number>;
  invalid: Record<string, number>;
}

const test = suite<Ctx>('frame flood');

test.before(async (ctx) => {
  ctx.stack = await createStack();
  ctx.children = [];
  ctx.clients = [];
});

test.after(async (ctx) => {
  for (const client of ctx.clients) client.close();
  for (const child of ctx.children) {
    child.kill('SIGKILL');
    await child.exited(10_000).catch(() => undefined);
  }
  await ctx.stack?.close();
});

/** Pings every PING_EVERY_MS for `ms` (one at a time); each round trip's time, and what was not a pong. */
async function pings(client: TestClient, ms: number): Promise<{ latencies: number[]; failures: string[] }> {
  const latencies: number[] = [];
  const failures: string[] = [];
  const end = performance.now() + ms;
  let due = performance.now();
  while (performance.now() < end) {
    const started = performance.now();
    const answer = await client.request('ping', {}, 5_000).catch((error: Error) => ({ type: 'timeout', payload: error.message }));
    latencies.push(performance.now() - started);
    if (answer.type !== 'pong') failures.push(JSON.stringify(answer.payload));
    // Paced, not back to back (the pace is the point): the user's own limit is 50 frames a second.
    due = Math.max(due + PING_EVERY_MS, performance.now());
    await sleep(due - performance.now());
  }
  return { latencies, failures };
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
}

/** The longest event-loop delay the gateway saw since the previous scrape (prom-client resets its monitor on each). */
const maxStallMs = (metrics: Scrape) => total(metrics, 'convo_nodejs_eventloop_lag_max_seconds') * 1000;

test("a user's flood of bad frames from 30 reconnecting sockets leaves another user's pings fast and the gateway's loop unstalled", async (ctx) => {
  const env = ctx.stack.env;
  const gateway = run(process.execPath, ['--max-semi-space-size=2', '--import', 'tsx', 'app/main.ts', 'gateway'], cleanEnv({
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: env.DATABASE_URL!,
    REDIS_URL: env.REDIS_URL!,
    REDIS_PREFIX: env.REDIS_PREFIX!,
    JWT_SECRET: env.JWT_SECRET!,
    DATA_DIR: env.DATA_DIR!,
    OPENAI_BASE_URL: env.OPENAI_BASE_URL!,
    OPENAI_API_KEY: 'test-key',
    LOG_LEVEL: 'error',
  }));
  ctx.children.push(gateway);
  const [, url, port] = await gateway.waitFor(/ready: (ws:\/\/127\.0\.0\.1:(\d+)\/v1\/ws)/, 60_000);
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;

  const calm = await TestClient.connect(url!, { token: await ctx.stack.token('calm', 'quiet') });
  ctx.clients.push(calm);
  await calm.next((f) => f.type === 'session.ready');
  await pings(calm, 1_000);

  // Quiet: the same pings with nothing else going on.
  await scrape(metricsUrl);
  const quiet = await pings(calm, QUIET_MS);
  const quietStall = maxStallMs(await scrape(metricsUrl));

  const flooder = run(process.execPath, ['--import', 'tsx', 'test/support/frame-flooder.ts'], cleanEnv({
    FLOOD_URL: url!,
    FLOOD_TOKEN: await ctx.stack.token('hostile', 'rough'),
    FLOOD_SOCKETS: '30',
    FLOOD_RATE: '4700',
    FLOOD_MS: String(FLOOD_MS),
  }));
  ctx.children.push(flooder);
  await flooder.waitFor(/^flooding$/m, 15_000);
  const before = await scrape(metricsUrl);
  const flood = await pings(calm, FLOOD_MS - 1_000);
  const after = await scrape(metricsUrl);
  const [, json] = await flooder.waitFor(/^result (\{.*\})$/m, 15_000);
  const result = JSON.parse(json!) as FloodResult;

  const delta = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
  const sent = Object.values(result.sent).reduce((a, b) => a + b, 0);
  const received = delta('convo_frames_in_total');
  const unparsed = delta('convo_errors_sent_total', { code: 'rate_limited' }) + delta('convo_errors_sent_total', { code: 'binary_not_supported' });
  const reconnectsRefused = Object.values(result.refused).reduce((a, b) => a + b, 0);
  const floodStall = maxStallMs(after);
  const [quietP99, floodP99] = [p99(quiet.latencies), p99(flood.latencies)];
  console.log(`  quiet: ${quiet.latencies.length} pings, p99 ${quietP99.toFixed(1)} ms, max stall ${quietStall.toFixed(0)} ms`);
  console.log(`  flood: ${flood.latencies.length} pings, p99 ${floodP99.toFixed(1)} ms (bound ${(2 * quietP99 + 50).toFixed(1)}), max stall ${floodStall.toFixed(0)} ms (bound 200)`);
  console.log(`  flooder: ${sent} frames sent in ${FLOOD_MS / 1000} s (${JSON.stringify(result.sent)}), ${result.opened} sockets opened, ${reconnectsRefused} reconnects refused ${JSON.stringify(result.refused)}, closes ${JSON.stringify(result.closes)}, errors received ${JSON.stringify(result.errors)}`);
  console.log(`  gateway: ${received} frames received, ${received - unparsed} reached the parser, ${unparsed} refused unparsed (rate or binary), ${delta('convo_connections_closed_total', { code: '4008' })} sockets closed with 4008`);
  console.log(`  invalid_frame answers: ${JSON.stringify(result.invalid)}`);

  assert.equal([...quiet.failures, ...flood.failures], [], 'every ping of the other user was answered');
  assert.ok(sent > 1_000, `the flood happened (${sent} frames)`);
  const wideRefusals = Object.entries(result.invalid).filter(([message]) => /^The frame holds more than 64 values/.test(message));
  assert.ok(wideRefusals.length === 1 && wideRefusals[0]![1] > 0, `the ${result.wideBytes}-byte frame of 4,000 keys is refused before JSON.parse`);
  assert.ok(reconnectsRefused > 0, 'reconnects after policy closes are refused');
  assert.ok(floodP99 <= 2 * quietP99 + 50, `ping p99 ${floodP99.toFixed(1)} ms under the flood, ${quietP99.toFixed(1)} ms quiet`);
  assert.ok(floodStall <= 200, `the gateway's event loop stalled ${floodStall.toFixed(0)} ms`);
});

test('a frame of 4,000 keys is refused before it is parsed, in microseconds; a frame with a stray field still gets its own message', async (ctx) => {
  const keys = Array.from({ length: 4000 }, (_, i) => `"key${i}":${i}`).join(',');
  const wide = `{"type":"ping","id":"wide","payload":{${keys}}}`;
  const started = performance.now();
  for (let i = 0; i < 200; i++) parseClientFrame(wide);
  const perFrameUs = ((performance.now() - started) / 200) * 1000;
  assert.ok(perFrameUs < 100, `${perFrameUs.toFixed(1)} µs per frame (JSON.parse, findUnstorable and ajv took about 1,700)`);
  assert.is(MOST_FRAME_VALUES, 9, 'a message.send with every field: the frame, type, id, payload and its five fields');
  const fullest = { type: 'message.send', id: 'm1', payload: { content: 'hi', thread_id: 't_1', agent_id: 'a_1', client_message_id: 'c1', on_busy: 'reject' } };
  assert.ok(parseClientFrame(JSON.stringify(fullest)).ok, 'the fullest valid frame passes the bound');

  const node = await ctx.stack.start({ gateway: true, worker: false });
  const client = await TestClient.connect(ctx.stack.wsUrl(node), { token: await ctx.stack.token('wide') });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  client.send(wide);
  const refused = await client.next((f) => f.type === 'error');
  assert.equal([refused.payload.code, refused.payload.retryable], ['invalid_frame', false]);
  assert.is(refused.payload.message, "The frame holds more than 64 values (keys' values and array items); no valid frame holds more than 9.");
  const stray = await client.request('message.send', { ...fullest.payload, typo: 1 });
  assert.equal([stray.payload.code, stray.payload.message], ['invalid_frame', "payload has an unknown field 'typo'"]);
  assert.is((await client.request('ping', {})).type, 'pong');
});

test('a frame past the per-second limit is refused unparsed: its id is read from its first 256 bytes', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: false }, { RATE_LIMIT_FRAMES_PER_SEC: '2', BAD_FRAME_LIMIT: '100' });
  const client = await TestClient.connect(ctx.stack.wsUrl(node), { token: await ctx.stack.token('hasty') });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  const pad = 'x'.repeat(300);
  // Two pass (the burst); the next three come too soon.
  client.send({ type: 'ping', id: 'ok1', payload: {} });
  client.send({ type: 'ping', id: 'ok2', payload: {} });
  client.send({ type: 'ping', id: 'early', payload: { pad } });
  client.send(`{"type":"ping","payload":{"pad":"${pad}"},"id":"late"}`);
  client.send(`{ "payload" : {"id":"inner"}, "id" : "spaced" }`);
  await client.until(() => client.frames.filter((f) => f.type === 'error').length === 3, 5_000, 'three refusals');
  const refusals = client.frames.filter((f) => f.type === 'error');
  assert.ok(refusals.every((f) => f.payload.code === 'rate_limited'));
  assert.equal(refusals.map((f) => f.id), ['early', undefined, 'spaced'], 'an id past the first 256 bytes is not looked for; a nested "id" is not the frame\'s');
  assert.equal(client.frames.filter((f) => f.type === 'pong').map((f) => f.id), ['ok1', 'ok2']);
});

test.run();
