/**
 * One scenario on the single node and on the cluster (`--services both`), side by side: the rate,
 * CPU per turn by kind of process, Redis commands (per turn, and per shard on the cluster),
 * Postgres rows, the replica's share of clients' reads, latencies and the correctness checks.
 */
import { table } from '../stats.js';
import type { ScenarioReport } from './report.js';

const fixed = (value: number | null | undefined, digits = 1) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));

/** CPU (ms per turn, or s when the scenario has no turns) of the processes whose names match. */
function cpu(r: ScenarioReport, name: RegExp): number | null {
  const procs = r.processes.filter((p) => name.test(p.name));
  if (procs.length === 0) return null;
  const seconds = procs.reduce((sum, p) => sum + p.cpuS, 0);
  return r.turns ? (seconds * 1000) / r.turns : seconds;
}

function reads(r: ScenarioReport, server: 'primary' | 'replica'): number {
  return Object.entries(r.client_reads ?? {}).filter(([key]) => key.endsWith(`/${server}`)).reduce((sum, [, n]) => sum + n, 0);
}

export function compareServices(single: ScenarioReport, cluster: ScenarioReport): string {
  const perTurn = single.turns > 0 ? 'ms/turn' : 's';
  const row = (label: string, f: (r: ScenarioReport) => number | null | undefined, digits = 1): string[] => [label, fixed(f(single), digits), fixed(f(cluster), digits)];
  const latency = (name: string, p: 'p50' | 'p95' | 'p99') => row(`${name} ${p} (ms)`, (r) => r.latency_ms[name]?.[p], 0);
  const shards = (r: ScenarioReport) => (r.redis?.nodes ?? []).filter((n) => n.role !== 'replica');
  const rows: string[][] = [
    ...(single.turns > 0 ? [row('turns/s', (r) => r.turns_per_s), row('events stored/s', (r) => r.events_per_s)] : []),
    row(`server-side CPU (${perTurn}): gateways + workers + Postgres (+ replica) + Redis (all nodes)`, (r) => r.server_cpu_ms_per_turn ?? cpu(r, /^(gateway|worker|all|postgres|redis)/), 2),
    row(`  gateways (${perTurn})`, (r) => cpu(r, /^gateway/), 2),
    row(`  workers (${perTurn})`, (r) => cpu(r, /^worker/), 2),
    row(`  Postgres primary (${perTurn})`, (r) => cpu(r, /^postgres$/), 2),
    row(`  Postgres replica (${perTurn})`, (r) => cpu(r, /^postgres-replica$/), 2),
    row(`  Redis, serving nodes: the single node / the 3 masters (${perTurn})`, (r) => cpu(r, /^redis(-m\d+)?$/), 2),
    row(`  Redis, the cluster's replicas (${perTurn})`, (r) => cpu(r, /^redis-r/), 2),
    row('Redis commands per turn (serving nodes)', (r) => r.redis?.commands_per_turn, 1),
    row('Redis commands/s, the busiest serving node', (r) => Math.max(...shards(r).map((n) => n.commands_per_s)), 0),
    row('Redis commands/s, the least busy serving node', (r) => Math.min(...shards(r).map((n) => n.commands_per_s)), 0),
    row('Postgres rows written per turn (primary)', (r) => r.rows_written_per_turn, 1),
    row('clients\' reads answered by the primary', (r) => reads(r, 'primary'), 0),
    row('clients\' reads answered by the replica', (r) => reads(r, 'replica'), 0),
    ...['ack', 'first_delta', 'full_turn', 'fanout_lag', 'resume_ack', 'resumed and caught up (from the drop)']
      .filter((name) => single.latency_ms[name] || cluster.latency_ms[name])
      .flatMap((name) => [latency(name, 'p50'), latency(name, name.startsWith('resume') ? 'p95' : 'p99')]),
    ...(single.storm ? [row('storm: all caught up (s after the drop)', (r) => r.storm?.all_caught_up_s, 2)] : []),
  ];
  const checks = (r: ScenarioReport) => `${r.checks.filter((c) => c.ok === c.total).length} of ${r.checks.length} checks passed${r.passed ? '' : ' (FAIL)'}`;
  return [
    `\n== ${single.scenario} (topology ${single.topology}): the single node beside the cluster`,
    table(['', 'single: 1 redis-server, primary only', 'cluster: 3 masters + 3 replicas, read replica'], [...rows, ['correctness', checks(single), checks(cluster)]]),
  ].join('\n');
}
