/**
 * The fault matrix on a Redis Cluster (REDIS_CLUSTER_NODES, a throwaway 3-master cluster with a
 * replica each): gateways and workers in processes of their own, killed with SIGKILL or stopped
 * with SIGTERM mid-turn, as on a single Redis (gateway-death, long-turns, the graceful hand-back).
 * Every event reaches its client once and in order, equal to the log; every turn completes.
 *  - a gateway killed mid-stream: the client resumes on another gateway with after_seq;
 *  - a worker killed mid-turn: its run is taken over by the other worker once its heartbeat is
 *    stale (RUN_STALE_MS), on the thread's queue partition, and completes on attempt 2;
 *  - a worker stopped with SIGTERM mid-turn: it hands the run back and another worker finishes it;
 *  - a new gateway and worker started after all that run a turn normally.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient } from './support/client.js';
import { cleanEnv, readyUrl, run, type Child } from './support/process.js';
import { assertClientMatchesLog, assertRunRebuilds } from './support/run-checks.js';
import { createStack, type TestStack } from './support/stack.js';
import { startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';

interface Ctx {
  cluster: ThrowawayRedisCluster;
  stack: TestStack;
  children: Child[];
  clients: TestClient[];
}

const STALE_MS = 2_000;
const test = suite<Ctx>('fault matrix (redis cluster)');

test.before(async (ctx) => {
  ctx.children = [];
  ctx.clients = [];
  ctx.cluster = await startThrowawayRedisCluster();
  ctx.stack = await createStack({ env: { REDIS_URL: '', REDIS_CLUSTER_NODES: ctx.cluster.nodesSetting, RUN_STALE_MS: String(STALE_MS) }, sim: { tokenDelayMs: 0 } });
});
test.after.each(async (ctx) => {
  for (const client of ctx.clients.splice(0)) client.close();
  for (const child of ctx.children.splice(0)) child.kill('SIGKILL');
});
test.after(async (ctx) => {
  for (const child of ctx.children) child.kill('SIGKILL');
  await Promise.all(ctx.children.map((child) => child.exited().catch(() => null)));
  await ctx.stack?.close();
  await ctx.cluster?.close();
});

function start(ctx: Ctx, role: 'gateway' | 'worker', env: Record<string, string> = {}): Child {
  const child = run(process.execPath, ['--import', 'tsx', 'app/main.ts', role], cleanEnv({ ...ctx.stack.env, LOG_LEVEL: 'info', ...env }));
  ctx.children.push(child);
  return child;
}
async function gateway(ctx: Ctx): Promise<{ child: Child; url: string }> {
  const child = start(ctx, 'gateway');
  return { child, url: await readyUrl(child) };
}
async function worker(ctx: Ctx, env: Record<string, string> = {}): Promise<Child> {
  const child = start(ctx, 'worker', env);
  await child.waitFor(/"msg":"started"/, 30_000);
  return child;
}
async function client(ctx: Ctx, url: string, sub: string): Promise<TestClient> {
  const c = await TestClient.connect(url, { token: await ctx.stack.token(sub) });
  ctx.clients.push(c);
  await c.next((f) => f.type === 'session.ready');
  return c;
}
const deltasOf = (c: TestClient, threadId: string) => c.events(threadId).filter((e) => e.type === 'message_delta').length;
const runRow = (ctx: Ctx, runId: string) => ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', runId).executeTakeFirstOrThrow();

test('a gateway killed mid-stream: the client resumes on another gateway with after_seq, nothing missing or doubled', async (ctx) => {
  const [a, b] = await Promise.all([gateway(ctx), gateway(ctx)]);
  await worker(ctx);
  const first = await client(ctx, a.url, 'cluster-roamer');
  const ack = await first.request('message.send', { content: 'A long and slow answer please [[words:150]] [[delay:15]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  const { thread_id, run_id } = ack.payload;
  await first.until(() => deltasOf(first, thread_id) >= 3, 20_000, 'some deltas');
  a.child.kill('SIGKILL');
  await a.child.exited();
  await first.waitClose();
  const seen = first.events(thread_id);
  const lastSeen = seen[seen.length - 1]!.payload.seq as number;

  const second = await client(ctx, b.url, 'cluster-roamer');
  const sub = await second.request('thread.subscribe', { thread_id, after_seq: lastSeen });
  assert.is(sub.type, 'ack', JSON.stringify(sub.payload));
  const done = await second.completed(run_id, 30_000);
  assert.is(done.payload.status, 'completed');
  const all = [...seen, ...second.events(thread_id)];
  assert.equal(all.map((e) => e.payload.seq), all.map((_, i) => i + 1), 'gap-free, no duplicates');
  assert.is(all.filter((e) => e.type === 'agent_completed').length, 1);
  assert.is(all.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join(''), done.payload.message.content);
  const stored = await ctx.stack.db.selectFrom('events').select('seq').where('thread_id', '=', thread_id).execute();
  assert.is(stored.length, all.length, 'the client holds every stored event');
});

/**
 * A gateway and a worker taking one turn at a time; a long answer streaming there, then a second
 * worker started: the first is the one a test stops.
 */
async function streamingOnFirstWorker(ctx: Ctx, sub: string, story: string) {
  const { url } = await gateway(ctx);
  const first = await worker(ctx, { WORKER_CONCURRENCY: '1' });
  const c = await client(ctx, url, sub);
  const ack = await c.request('message.send', { content: `A long story please ${story}` });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  const { thread_id, run_id } = ack.payload;
  await c.until(() => deltasOf(c, thread_id) >= 2, 20_000, 'the first worker streaming');
  await worker(ctx);
  return { first, c, thread_id: thread_id as string, run_id: run_id as string };
}

test('a worker killed mid-turn: the other worker takes the run over once its heartbeat is stale, and it completes', async (ctx) => {
  // 8 s of answer: the second worker's start (seconds on a loaded machine) must not outlast it.
  const { first: doomed, c, thread_id, run_id } = await streamingOnFirstWorker(ctx, 'cluster-bereaved', '[[words:200]] [[delay:40]]');
  assert.equal(await runRow(ctx, run_id), { status: 'running', attempt: 1 }, 'still streaming on the first worker when it is killed');
  doomed.kill('SIGKILL');
  await doomed.exited();

  const done = await c.completed(run_id, 45_000);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload.error ?? {}));
  assert.is((await runRow(ctx, run_id)).attempt, 2, 'taken over once');
  const events = await assertClientMatchesLog(ctx.stack.db, c, thread_id);
  const { restarts } = assertRunRebuilds(events, run_id);
  assert.is(restarts.length, 1, 'the client was told the answer restarted');
  // The thread's next turn runs (its partition's queue is unchanged by the takeover).
  const next = await c.request('message.send', { thread_id, content: 'And another [[words:6]]' });
  assert.is((await c.completed(next.payload.run_id, 30_000)).payload.status, 'completed');
  await assertClientMatchesLog(ctx.stack.db, c, thread_id);
});

test('a worker stopped with SIGTERM mid-turn hands its run back, another worker finishes it; a new gateway and worker run a turn', async (ctx) => {
  const { first: leaving, c, thread_id, run_id } = await streamingOnFirstWorker(ctx, 'cluster-handover', '[[words:200]] [[delay:30]]');
  assert.equal(await runRow(ctx, run_id), { status: 'running', attempt: 1 }, 'still streaming on the first worker when it is stopped');
  leaving.kill('SIGTERM');
  await leaving.exited();
  const done = await c.completed(run_id, 45_000);
  assert.is(done.payload.status, 'completed', JSON.stringify(done.payload.error ?? {}));
  const events = await assertClientMatchesLog(ctx.stack.db, c, thread_id);
  assertRunRebuilds(events, run_id);
  const row = await runRow(ctx, run_id);
  assert.ok(row.attempt >= 1 && row.attempt <= 2, `one hand-back at most (attempt ${row.attempt})`);

  // A gateway and a worker started afresh on the cluster: a new socket runs a turn.
  const fresh = await gateway(ctx);
  await worker(ctx);
  const d = await client(ctx, fresh.url, 'cluster-newcomer');
  const again = await d.request('message.send', { content: 'All good? [[words:10]]' });
  assert.is(again.type, 'ack', JSON.stringify(again.payload));
  assert.is((await d.completed(again.payload.run_id, 30_000)).payload.status, 'completed');
  assertRunRebuilds(await assertClientMatchesLog(ctx.stack.db, d, again.payload.thread_id), again.payload.run_id);
});

test.run();
