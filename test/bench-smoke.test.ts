/**
 * The benchmark as a smoke test: `split` (one gateway and one worker process, compiled), 50
 * clients x 5 turns with a zero-delay model, on the benchmark's own private Postgres and Redis,
 * then the full raw turn (its own gateway and worker processes) in the same run, with and without
 * its history read, 250 turns each. It asserts that every correctness check passed, the raw turn's
 * too, and that the report is well formed (every field present, every figure finite, the ratios
 * positive), never a timing: this machine's speed is not under test here.
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
    const bench = run('node', ['--import', 'tsx', 'loadtest/bench.ts', '--scenario', 'closed', '--topology', 'split', '--clients', '50', '--turns', '5', '--token-delay-ms', '0', '--raw-min-turns', '250', '--out', out, '--deadline-s', '240'], cleanEnv());
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
    assert.equal(r.options.rounds, 1, 'one round of 50 x 5 reaches --raw-min-turns 250');
    for (const check of r.checks) assert.equal(check.ok, check.total, `check: ${check.name}`);
    assert.ok(r.checks.length >= 6, 'the correctness checks are all there');
    const finite = (value: unknown, what: string) => assert.ok(typeof value === 'number' && Number.isFinite(value), `${what} is a finite number (${value})`);
    for (const key of ['window_s', 'turns_per_s', 'events', 'events_per_s', 'events_per_turn', 'server_cpu_ms_per_turn', 'statements_per_turn', 'transactions_per_turn', 'pool_statements_per_turn']) {
      finite(r[key], key);
    }
    assert.ok(r.events_per_turn >= 5, 'a turn stores at least its five lifecycle events');
    assert.match(bench.stdout(), /events per turn \(stored \/ turns\)\s+\d+\.\d\d/, 'events per turn printed');
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
    assert.ok(r.most_sent_statements.length > 0 && r.most_sent_statements.length <= 6, 'the statements sent most often are listed');
    for (const t of r.most_sent_statements) assert.ok(t.toplevel, `a statement the servers sent: ${t.statement}`);

    // The ceiling: the full raw turn, both runs, in the same run.
    const raw = r.raw_turn;
    assert.ok(raw, 'the full raw turn ran');
    for (const key of ['cpu_ratio', 'cpu_ratio_without_history', 'throughput_ratio', 'throughput_ratio_without_history']) {
      finite(raw[key], `raw turn ${key}`);
      assert.ok(raw[key] > 0, `raw turn ${key} is positive (${raw[key]})`);
    }
    for (const [variant, reads] of [['with_history', true], ['without_history', false]] as const) {
      const v = raw[variant];
      assert.equal(v.options.read_history, reads, `${variant} read the history or not`);
      assert.equal(v.turns, 250, `${variant}: every turn of its 250 completed`);
      for (const check of v.checks) assert.equal(check.ok, check.total, `${variant} check: ${check.name}`);
      assert.ok(v.checks.length >= 6, `${variant}: the correctness checks are all there`);
      for (const key of ['turns_per_s', 'server_cpu_ms_per_turn', 'events_per_turn', 'round_trips_per_turn']) finite(v[key], `${variant} ${key}`);
      assert.ok(v.server_cpu_ms_per_turn > 0, `${variant} used CPU`);
      assert.ok(Math.abs(v.events_per_turn - r.events_per_turn) < 0.05, `${variant} stores the server's events per turn (${v.events_per_turn} vs ${r.events_per_turn})`);
      assert.equal(v.round_trips_per_turn, reads ? 3 : 2, `${variant}: one statement in the gateway, one or two in the worker`);
      assert.equal(v.processes.map((p: { name: string }) => p.name).sort(), ['driver', 'llm-sim', 'postgres', 'raw-gateway', 'raw-worker', 'redis']);
      assert.equal(v.latency_ms.full_turn.n, 250);
    }
    assert.match(bench.stdout(), /server-side CPU per turn \/ the raw turn's: \d+\.\d\dx reading the history, \d+\.\d\dx without/);
    assert.match(bench.stdout(), /turns\/s \/ the raw turn's: \d+\.\d% reading the history, \d+\.\d% without/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
