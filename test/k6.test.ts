/**
 * The k6 scripts in loadtest/k6, run unchanged under the adapter (loadtest/k6/adapter: the k6
 * modules over `ws`, one worker thread per VU) against a live gateway and worker: they pass on a
 * healthy server, and a script or a setting that breaks the protocol fails the run. (They are
 * type-checked against @types/k6 by `npm run typecheck`.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from './support/process.js';
import { useStack, type StackCtx } from './support/fixture.js';

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
  metrics: Record<string, { count?: number; rate?: number; 'p(95)'?: number }>;
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

test.run();
