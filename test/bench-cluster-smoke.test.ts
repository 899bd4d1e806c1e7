/**
 * The benchmark's cluster mode as a smoke test, so it cannot rot: `--topology 2x2 --services both`
 * with a handful of turns (the single node, then a 3-master Redis Cluster with replicas and a
 * Postgres read replica), and a storm of a few followers on the cluster. It asserts what the mode
 * is for, never a timing: every correctness check passed on both, the cluster run's commands were
 * counted per node (all three masters served some), the replica answered the followers' replays,
 * resumes went to the other gateway, the comparison table was printed; and that nothing is left
 * behind: the cluster's nodes and the replica stop answering, their dirs are gone, also when the
 * run is interrupted (SIGINT, as Ctrl-C sends it) right after the services started.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, ROOT, run, type Child } from './support/process.js';

/** Whether something accepts connections on the loopback port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The cluster's and the replica's ports, from the line the bench prints once they are up. */
function servicePorts(stdout: string): number[] {
  const line = stdout.split('\n').find((l) => l.startsWith('cluster mode:'));
  assert.ok(line, `the bench printed its cluster services\n${stdout.slice(-2000)}`);
  const nodes = /nodes (\S+);/.exec(line!)![1]!.split(',').map((n) => Number(n.split(':')[1]));
  const replica = Number(/on 127\.0\.0\.1:(\d+)/.exec(line!)![1]);
  assert.is(nodes.length, 6, 'six cluster nodes');
  return [...nodes, replica];
}

async function assertNothingLeft(bench: Child, ports: number[]): Promise<void> {
  for (const port of ports) assert.not.ok(await answers(port), `nothing answers on ${port} after the run`);
  const owned = readdirSync(os.tmpdir())
    .filter((name) => name.startsWith('convo-throwaway-'))
    .filter((name) => {
      try {
        return readFileSync(path.join(os.tmpdir(), name, 'owner'), 'utf8').trim() === String(bench.proc.pid);
      } catch {
        return false;
      }
    });
  assert.equal(owned, [], 'no throwaway dir of the bench is left');
  assert.not.ok(existsSync(path.join(ROOT, 'bench-results', `.build-${bench.proc.pid}`)), 'the build is removed');
}

// One round: the default runs rounds until 2,000 turns, a long run for a smoke test of six clients.
const BENCH = ['--import', 'tsx', 'loadtest/bench.ts', '--topology', '2x2', '--services', 'both', '--no-ceiling', '--rounds', '1'];

test('--topology 2x2 --services both: closed loop on the single node and the cluster, correct, compared, nothing left', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convo-bench-cluster-smoke-'));
  const out = path.join(dir, 'report.json');
  try {
    const bench = run('node', [...BENCH, '--scenario', 'closed', '--clients', '6', '--turns', '3', '--followers', '2', '--token-delay-ms', '0', '--out', out, '--deadline-s', '240'], cleanEnv());
    const code = await bench.exited(300_000);
    assert.is(code, 0, `the benchmark exits 0\n${bench.stdout().slice(-4000)}\n${bench.stderr().slice(-4000)}`);
    assert.match(bench.stdout(), /RESULT: PASS/);
    assert.match(bench.stdout(), /closed \(topology 2x2\): the single node beside the cluster/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.services, ['single', 'cluster']);
    assert.ok(report.machine['redis cluster'] && report.machine['postgres replica'], 'the cluster services are in the machine facts');
    assert.equal(report.scenarios.map((r: { services: string }) => r.services), ['single', 'cluster']);
    for (const r of report.scenarios) {
      assert.is(r.turns, 18, `${r.services}: every turn completed`);
      for (const check of r.checks) assert.is(check.ok, check.total, `${r.services} check: ${check.name}`);
      assert.ok(r.redis.commands_per_turn > 0, `${r.services}: Redis commands counted`);
      assert.ok(r.rows_written_per_turn > 0, `${r.services}: rows written counted`);
      assert.is(r.gateway_spread.threads_on_several_gateways, 6, `${r.services}: every thread is followed on both gateways`);
    }
    const [single, cluster] = report.scenarios;
    assert.equal(single.redis.nodes.map((n: { name: string }) => n.name), ['redis']);
    const names = cluster.processes.map((p: { name: string }) => p.name).sort();
    assert.equal(names, ['driver', 'gateway-1', 'gateway-2', 'llm-sim', 'postgres', 'postgres-replica', 'redis-m1', 'redis-m2', 'redis-m3', 'redis-r1', 'redis-r2', 'redis-r3', 'worker-1', 'worker-2']);
    const masters = cluster.redis.nodes.filter((n: { role: string }) => n.role === 'master');
    assert.is(masters.length, 3);
    for (const master of masters) assert.ok(master.commands > 0, `${master.name} served commands (${master.commands})`);
    assert.ok(cluster.redis.top_commands.some((c: { command: string }) => c.command === 'spublish'), 'events travel on sharded pub/sub');
    assert.not.ok(single.redis.top_commands.some((c: { command: string }) => c.command === 'spublish'), 'the single node uses plain pub/sub');
    // The followers subscribe with after_seq 0 before the first turn: replays the replica answers.
    assert.ok(Object.entries(cluster.client_reads).some(([key, n]) => key === 'replay/replica' && (n as number) > 0), `the replica answered replays: ${JSON.stringify(cluster.client_reads)}`);
    assert.not.ok(Object.keys(single.client_reads).some((key) => key.endsWith('/replica')), 'no replica on the single node');
    await assertNothingLeft(bench, servicePorts(bench.stdout()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--services cluster: a storm of followers resuming on the other gateway, correct', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convo-bench-cluster-smoke-'));
  const out = path.join(dir, 'report.json');
  try {
    const bench = run('node', ['--import', 'tsx', 'loadtest/bench.ts', '--topology', '2x2', '--services', 'cluster', '--scenario', 'storm', '--storm-followers', '12', '--storm-threads', '3', '--out', out, '--deadline-s', '240'], cleanEnv());
    const code = await bench.exited(300_000);
    assert.is(code, 0, `the benchmark exits 0\n${bench.stdout().slice(-4000)}\n${bench.stderr().slice(-4000)}`);
    const [r] = JSON.parse(readFileSync(out, 'utf8')).scenarios;
    assert.is(r.services, 'cluster');
    for (const check of r.checks) assert.is(check.ok, check.total, `check: ${check.name}`);
    assert.is(r.storm.dropped, 12);
    assert.is(r.gateway_spread.followers_resumed_on_another_gateway, 12, 'every follower resumed on the other gateway');
    assert.is(r.latency_ms.resume_ack.n, 12);
    await assertNothingLeft(bench, servicePorts(bench.stdout()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--services cluster: SIGINT once the services are up stops and removes everything', async () => {
  const bench = run('node', [...BENCH, '--scenario', 'closed', '--clients', '2', '--turns', '1', '--deadline-s', '120'], cleanEnv());
  await bench.waitFor(/^cluster mode:.*$/m, 120_000);
  const ports = servicePorts(bench.stdout());
  bench.kill('SIGINT');
  const code = await bench.exited(60_000);
  assert.is(code, 130, `the bench exits 130 on SIGINT\n${bench.stderr().slice(-2000)}`);
  await assertNothingLeft(bench, ports);
});

test.run();
