/**
 * The k6 scripts in loadtest/k6, run unchanged under the adapter (loadtest/k6/adapter: the k6
 * modules over `ws`, one worker thread per VU) against a live gateway and worker: they pass on a
 * healthy server, and a script or a setting that breaks the protocol fails the run. (They are
 * type-checked against @types/k6 by `npm run typecheck`.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from './support/process.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor } from './support/wait.js';

interface Ctx extends StackCtx {
  tmp: string;
}

const test = suite<Ctx>('k6 scripts under the adapter');
useStack(test, {
  setup: async (ctx) => {
    ctx.tmp = await mkdtemp(path.join(os.tmpdir(), 'convo-k6-'));
  },
  teardown: async (ctx) => {
    await rm(ctx.tmp, { recursive: true, force: true });
  },
});

interface Summary {
  iterations: number;
  checks: Record<string, { passes: number; fails: number }>;
  metrics: Record<string, { count?: number; rate?: number; min?: number; 'p(95)'?: number }>;
  thresholds: Array<{ metric: string; expression: string; passed: boolean }>;
  errors: string[];
}

async function k6(ctx: Ctx, script: string, env: Record<string, string>, name: string) {
  const out = path.join(ctx.tmp, `${name}.json`);
  const args = ['loadtest/k6/adapter/run.mjs', script, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), `--summary-export=${out}`];
  const child = run(process.execPath, args, { PATH: process.env.PATH ?? '' });
  const code = await child.exited(60_000);
  const summary = JSON.parse(await readFile(out, 'utf8').catch(() => 'null')) as Summary | null;
  return { code, summary, output: child.stdout() + child.stderr() };
}

test('chat.js passes against a live gateway: ramping VUs, each its own user, turns in lifecycle order with gap-free seqs', async (ctx) => {
  const { code, summary, output } = await k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.url, JWT_SECRET: ctx.stack.secret, STAGES: '1s:3,2s:3,1s:0', TURNS: '2',
  }, 'healthy');
  assert.equal(code, 0, output);
  assert.ok(summary, output);
  assert.equal(summary!.errors, []);
  assert.ok(summary!.iterations >= 3, `iterations: ${summary!.iterations}`);
  for (const name of ['turn completed', 'lifecycle in order', 'seq gap-free', 'events of the acked run']) {
    assert.ok(summary!.checks[name]!.passes >= 6, `${name}: ${JSON.stringify(summary!.checks[name])}`);
    assert.equal(summary!.checks[name]!.fails, 0, name);
  }
  assert.ok(summary!.metrics.convo_turn_ms!.count! >= 6);
  assert.equal(summary!.metrics.convo_turn_ok!.rate, 1);
  assert.ok(summary!.thresholds.length >= 5 && summary!.thresholds.every((t) => t.passed), JSON.stringify(summary!.thresholds));
  assert.match(output, /scenario chat: ramping-vus, up to 3 VUs/);
  // One user per VU: the turns were stored under k6-vu-<n>.
  const users = await ctx.stack.db.selectFrom('threads').select('user_id').distinct().where('workspace_id', '=', 'k6').execute();
  assert.equal(users.map((u) => u.user_id).sort(), ['k6-vu-1', 'k6-vu-2', 'k6-vu-3']);
});

test('a refused token fails the run: the thresholds have nothing to pass on', async (ctx) => {
  const { code, summary, output } = await k6(ctx, 'loadtest/k6/chat.js', { URL: ctx.url, JWT_SECRET: 'w'.repeat(40), STAGES: '100ms:1,1s:1', TURNS: '1' }, 'refused');
  assert.equal(code, 99, output);
  assert.equal(summary!.checks['handshake accepted']!.passes, 0);
  const failed = summary!.thresholds.filter((t) => !t.passed).map((t) => t.metric);
  assert.ok(failed.includes('convo_handshake_ms') && failed.includes('checks'), JSON.stringify(failed));
});

test('a script that breaks the protocol fails the run', async (ctx) => {
  const source = await readFile(path.join(ROOT, 'loadtest/k6/chat.js'), 'utf8');
  const broken = path.join(ROOT, 'loadtest/k6', `.broken-${process.pid}.js`);
  await writeFile(broken, source.replace("type: 'message.send'", "type: 'message.sned'"));
  try {
    const { code, summary, output } = await k6(ctx, broken, { URL: ctx.url, JWT_SECRET: ctx.stack.secret, STAGES: '100ms:1,1s:1', TURNS: '1' }, 'broken');
    assert.equal(code, 99, output);
    assert.ok((summary!.metrics.convo_protocol_errors!.count ?? 0) >= 1);
    assert.ok(summary!.thresholds.some((t) => t.metric === 'convo_protocol_errors' && !t.passed));
  } finally {
    await rm(broken, { force: true });
  }
});

test('a VU whose init context is slower than the stages still runs them: VUs are initialized before the clock starts, as in k6', async (ctx) => {
  const source = await readFile(path.join(ROOT, 'loadtest/k6/chat.js'), 'utf8');
  const slow = path.join(ROOT, 'loadtest/k6', `.slow-init-${process.pid}.js`);
  // 1.5 s of init per VU (a loaded machine, a large script), against 0.6 s of stages.
  await writeFile(slow, `${source}\nconst initStarted = Date.now();\nwhile (Date.now() - initStarted < 1500);\n`);
  try {
    const { code, summary, output } = await k6(ctx, slow, { URL: ctx.url, JWT_SECRET: ctx.stack.secret, STAGES: '100ms:1,500ms:1', TURNS: '1', WORKSPACE: 'k6-slow' }, 'slow-init');
    assert.equal(code, 0, output);
    assert.ok(summary!.iterations >= 1, `iterations: ${summary!.iterations}`);
    assert.ok(summary!.checks['turn completed']!.passes >= 1, output);
  } finally {
    await rm(slow, { force: true });
  }
});

test('a server that accepts the connection and then says nothing fails the run at the handshake deadline', async (ctx) => {
  // Accepts TCP connections and never answers the upgrade.
  const held = new Set<net.Socket>();
  const stalled = net.createServer((socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
  try {
    const port = (stalled.address() as net.AddressInfo).port;
    const started = Date.now();
    const { code, summary, output } = await k6(ctx, 'loadtest/k6/chat.js', {
      URL: `ws://127.0.0.1:${port}/v1/ws`, JWT_SECRET: ctx.stack.secret, STAGES: '100ms:1,500ms:1', TURNS: '1', HANDSHAKE_TIMEOUT_MS: '1000',
    }, 'stalled');
    assert.equal(code, 99, output);
    // Failed by its own checks, not by the runner cutting off an iteration that never ended.
    assert.equal(summary!.errors, [], output);
    assert.ok(summary!.checks['session.ready within HANDSHAKE_TIMEOUT_MS']!.fails >= 1, output);
    assert.ok(summary!.thresholds.some((t) => t.metric === 'checks' && !t.passed));
    assert.ok(Date.now() - started < 25_000, 'well before gracefulStop');
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => stalled.close(() => resolve()));
  }
});

test('a socket the server closes in the middle of a turn fails a check at once (not only when the turn deadline passes)', async (ctx) => {
  const workspace = 'k6-cut';
  const running = k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.url, JWT_SECRET: ctx.stack.secret, WORKSPACE: workspace, STAGES: '100ms:1,500ms:1', TURNS: '1',
    MESSAGE: 'Keep talking [[words:300]] [[delay:20]]', TURN_TIMEOUT_MS: '120000',
  }, 'cut');
  // Once the turn streams, the gateway drops the socket following it.
  await waitFor(async () => {
    const runs = await ctx.stack.db.selectFrom('runs').innerJoin('threads', 'threads.id', 'runs.thread_id')
      .select(['runs.thread_id']).where('threads.workspace_id', '=', workspace).where('runs.status', '=', 'running').execute();
    const follower = runs.flatMap((r) => ctx.node.gateway!.fanout.followersOf(r.thread_id))[0];
    follower?.connection.ws?.close();
    return follower !== undefined;
  }, 20_000, 'a running turn to cut');
  const { code, summary, output } = await running;
  assert.equal(code, 99, output);
  assert.equal(summary!.errors, [], output);
  assert.ok(summary!.checks['socket open until the turns end']!.fails >= 1, output);
  assert.equal(summary!.checks['agent_completed within TURN_TIMEOUT_MS'], undefined, 'failed by the close, not by the turn deadline');
});

test('tokens minted in the script carry JWT_ISSUER and JWT_AUDIENCE for a server that requires them', async (ctx) => {
  const strict = await ctx.stack.start({ worker: false }, { JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'convo' });
  const { code, output } = await k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.stack.wsUrl(strict), JWT_SECRET: ctx.stack.secret, JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'convo',
    STAGES: '100ms:1,1s:1', TURNS: '1', WORKSPACE: 'k6-iss',
  }, 'issuer');
  assert.equal(code, 0, output);
});

/** The stack's settings with every rate limit back at the server's default (the stack raises them). */
function defaultLimits(ctx: Ctx): Record<string, string> {
  return Object.fromEntries(Object.keys(ctx.stack.env).filter((k) => /^(RATE_LIMIT_|MAX_QUEUED_FRAMES|MAX_SUBSCRIPTIONS)/.test(k)).map((k) => [k, '']));
}

test('chat.js as the README runs it passes against a gateway with the default rate limits: each VU keeps within its user\'s budget and nothing is refused', async (ctx) => {
  const node = await ctx.stack.start({ worker: false }, defaultLimits(ctx));
  const workspace = 'k6-defaults';
  // Turns take a few milliseconds here: a VU not paced would send 60 messages in a few seconds.
  const { code, summary, output } = await k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.stack.wsUrl(node), JWT_SECRET: ctx.stack.secret, WORKSPACE: workspace, STAGES: '100ms:2,6s:2', TURNS: '3',
  }, 'defaults');
  assert.equal(code, 0, output);
  assert.equal(summary!.errors, []);
  assert.is(summary!.metrics.convo_rate_limited!.count, 0, output);
  assert.is(summary!.metrics.convo_protocol_errors!.count, 0, output);
  assert.ok(summary!.metrics.convo_turn_ms!.count! >= 6, output);
  // The pace: 60 messages a minute, 90 % of it, is a send every 1.1 s per user; the server stamps
  // each message when it stores it, so allow it some of that margin.
  const sends = await ctx.stack.db.selectFrom('messages').innerJoin('threads', 'threads.id', 'messages.thread_id')
    .select(['threads.user_id', 'messages.created_at']).where('threads.workspace_id', '=', workspace).where('messages.role', '=', 'user')
    .orderBy('messages.created_at').execute();
  const byUser = new Map<string, number[]>();
  for (const row of sends) byUser.set(row.user_id, [...(byUser.get(row.user_id) ?? []), new Date(row.created_at).getTime()]);
  assert.equal([...byUser.keys()].sort(), ['k6-vu-1', 'k6-vu-2']);
  for (const [user, times] of byUser) {
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps.length >= 2 && Math.min(...gaps) >= 900, `${user}: gaps between sends ${gaps.join(', ')} ms`);
  }
});

test('a VU refused rate_limited waits retry_after_ms and sends again on the same socket: no reconnect loop, no storm of refused frames', async (ctx) => {
  // One run at a time for the user every VU shares: sends made while another VU's turn runs are
  // refused rate_limited with retry_after_ms 1000. The script's own pace is off.
  const node = await ctx.stack.start({ worker: false }, { RATE_LIMIT_RUNS_PER_USER: '1' });
  const token = await ctx.stack.token('k6-shared', 'k6-shared');
  const started = Date.now();
  const { code, summary, output } = await k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.stack.wsUrl(node), TOKEN: token, STAGES: '100ms:3,3s:3', TURNS: '1', MESSAGES_PER_MIN: '0', THREADS_PER_MIN: '0',
    MESSAGE: 'Take your time [[words:8]] [[delay:40]]',
  }, 'backoff');
  const seconds = (Date.now() - started) / 1000;
  assert.ok(code === 0 || code === 99, output);
  assert.equal(summary!.errors, [], output);
  const turns = summary!.metrics.convo_turn_ms!.count!;
  assert.ok(turns >= 3, `turns went on between the refusals: ${output}`);
  // A socket per iteration, and an iteration per turn: a refusal did not cost a reconnect.
  assert.ok(summary!.iterations <= turns + 3, `${summary!.iterations} sockets for ${turns} turns`);
  assert.equal(summary!.metrics.convo_protocol_errors!.count, 0, 'rate_limited is counted apart');
  const refused = summary!.metrics.convo_rate_limited!.count!;
  assert.ok(refused >= 1, `the limit was reached: ${output}`);
  // Every wait at least the server's retry_after_ms: so at most one refusal per VU per second.
  assert.ok(summary!.metrics.convo_backoff_ms!.min! >= 1000, JSON.stringify(summary!.metrics.convo_backoff_ms));
  assert.ok(refused <= 3 * Math.ceil(seconds + 1), `${refused} refusals in ${seconds.toFixed(1)} s`);
});

test('a refused handshake is waited out too: the script offers chat.v1, reads retry_after_ms from the error frame and does not reconnect before it', async (ctx) => {
  // One socket per user: the second VU's handshakes are refused while the first holds its socket.
  const node = await ctx.stack.start({ worker: false }, { RATE_LIMIT_CONNECTIONS_PER_USER: '1' });
  const token = await ctx.stack.token('k6-one-socket', 'k6-one-socket');
  const started = Date.now();
  const { summary, output } = await k6(ctx, 'loadtest/k6/chat.js', {
    URL: ctx.stack.wsUrl(node), TOKEN: token, STAGES: '100ms:2,3s:2', TURNS: '2', MESSAGES_PER_MIN: '0', THREADS_PER_MIN: '0',
    MESSAGE: 'Stay a while [[words:20]] [[delay:40]]',
  }, 'handshake-backoff');
  const seconds = (Date.now() - started) / 1000;
  assert.equal(summary!.errors, [], output);
  // At most one refused handshake per VU per second (without chat.v1 the refusal was an HTTP 429
  // the script could not read, and it connected again at once).
  assert.ok(summary!.iterations <= 2 * Math.ceil(seconds + 1), `${summary!.iterations} sockets in ${seconds.toFixed(1)} s`);
  const refused = summary!.metrics.convo_rate_limited!.count!;
  assert.ok(refused >= 1, `a handshake was refused: ${output}`);
  assert.ok(summary!.checks['handshake accepted']!.fails === refused, output);
  assert.ok(summary!.metrics.convo_backoff_ms!.min! >= 1000, JSON.stringify(summary!.metrics.convo_backoff_ms));
});

test.run();
