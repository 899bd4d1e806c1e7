/**
 * The benchmark as a smoke test: `split` (one gateway and one worker process, compiled), 50
 * clients x 5 turns with a zero-delay model, on the benchmark's own private Postgres and Redis.
 * It asserts that every correctness check passed and that the report is well formed (every field
 * present, every figure finite), never a timing: this machine's speed is not under test here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, run } from './support/process.js';

test('npm run bench -- --scenario closed --topology split: correct and well-formed', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convo-bench-smoke-'));
  const out = path.join(dir, 'report.json');
  try {
    const bench = run('node', ['--import', 'tsx', 'loadtest/bench.ts', '--scenario', 'closed', '--topology', 'split', '--clients', '50', '--turns', '5', '--token-delay-ms', '0', '--out', out, '--deadline-s', '240'], cleanEnv());
    const code = await bench.exited(300_000);
    assert.equal(code, 0, `the benchmark exits 0\n${bench.stdout().slice(-4000)}\n${bench.stderr().slice(-4000)}`);
    assert.match(bench.stdout(), /RESULT: PASS/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.result, 'pass');
    for (const key of ['cpu_model', 'cpus', 'memory_gib', 'node', 'kernel', 'load_avg_1m_at_start', 'commit', 'postgres server_version', 'redis version']) {
      assert.ok(report.machine[key] !== undefined && report.machine[key] !== '', `machine fact ${key}`);
    }
    assert.equal(report.scenarios.length, 1);
    const r = report.scenarios[0];
    assert.equal(r.scenario, 'closed');
    assert.equal(r.topology, 'split');
    assert.equal(r.turns, 250, 'every turn completed');
    for (const check of r.checks) assert.equal(check.ok, check.total, `check: ${check.name}`);
    assert.ok(r.checks.length >= 6, 'the correctness checks are all there');
    const finite = (value: unknown, what: string) => assert.ok(typeof value === 'number' && Number.isFinite(value), `${what} is a finite number (${value})`);
    for (const key of ['window_s', 'turns_per_s', 'events', 'events_per_s', 'events_per_turn', 'server_cpu_ms_per_turn', 'statements_per_turn', 'transactions_per_turn', 'pool_statements_per_turn']) {
      finite(r[key], key);
    }
    assert.ok(r.events_per_turn >= 5, 'a turn stores at least its five lifecycle events');
    assert.ok(r.statements_per_turn > 0 && r.transactions_per_turn > 0, 'statements were counted in Postgres');
    const names = r.processes.map((p: { name: string }) => p.name).sort();
    assert.equal(names, ['driver', 'gateway', 'llm-sim', 'postgres', 'redis', 'worker']);
    for (const p of r.processes) {
      finite(p.cpuS, `${p.name} CPU`);
      finite(p.rssMiB, `${p.name} RSS`);
      assert.ok(p.rssMiB > 0, `${p.name} has memory`);
    }
    for (const name of ['ack', 'first_delta', 'full_turn', 'fanout_lag']) {
      const s = r.latency_ms[name];
      assert.ok(s, `latency ${name}`);
      for (const key of ['n', 'p50', 'p95', 'p99', 'max']) finite(s[key], `${name} ${key}`);
    }
    assert.equal(r.latency_ms.full_turn.n, 250);
    assert.ok(r.ceiling, 'the raw ceiling ran');
    for (const key of ['turns', 'turns_per_s', 'machine_cpu_ms_per_turn', 'cpu_ratio', 'throughput_ratio']) finite(r.ceiling[key], `ceiling ${key}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
