/** The benchmark's printed tables, from the result object that is also written as JSON. */
import { latencyTable, table, type Summary } from '../stats.js';
import type { Check } from './messages.js';
import { REST_FROM_S, REST_TO_S, type EmbeddedRest } from './embedded-rest.js';
import type { GroupFigures } from './measure.js';
import type { RawPublishFigures } from './raw-publish-run.js';

/** Redis commands over the window: per node, and over the nodes that serve clients (the single node, or the masters). */
export interface RedisFigures {
  nodes: Array<{ name: string; role: string; commands: number; commands_per_s: number; commands_per_turn: number | null }>;
  commands_per_s: number;
  commands_per_turn: number | null;
  /** Per stored event. */
  commands_per_event: number | null;
  /** Per event delivered to a socket. */
  commands_per_delivered: number | null;
  top_commands: Array<{ command: string; per_turn: number | null; per_s: number }>;
}

export interface ScenarioReport {
  scenario: string;
  topology: string;
  /** `single`: one redis-server and the primary alone; `cluster`: a 3-master Redis Cluster with replicas and a Postgres read replica. */
  services?: 'single' | 'cluster';
  options: Record<string, unknown>;
  window_s: number;
  turns: number;
  turns_per_s: number;
  events: number;
  events_per_s: number;
  events_per_turn: number;
  /** Mean size of an event's frame as the clients received it. */
  mean_event_chars: number;
  sockets: number;
  processes: Array<GroupFigures & { cpu_pct: number; cpu_ms_per_turn: number | null }>;
  server_cpu_ms_per_turn: number | null;
  statements_per_turn: number | null;
  /** Of those, the ones a server sent (each a round trip); the rest ran inside the write functions. */
  round_trips_per_turn: number | null;
  /** The statements that took the most database time, per turn. */
  top_statements: Array<{ statement: string; toplevel: boolean; calls_per_turn: number; ms_per_turn: number }>;
  /** The statements the servers sent most often, per turn. */
  most_sent_statements: Array<{ statement: string; toplevel: boolean; calls_per_turn: number; ms_per_turn: number }>;
  /** Of those, BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE. */
  transaction_control_per_turn: number | null;
  transactions_per_turn: number | null;
  pool_statements_per_turn: number | null;
  /** Rows inserted, updated and deleted on the primary per turn (pg_stat_database). */
  rows_written_per_turn?: number | null;
  redis?: RedisFigures;
  /** Clients' reads a replica may answer, by `read/server` (convo_db_client_reads_total deltas over the window). */
  client_reads?: Record<string, number>;
  /** How the sockets sat on the gateways (fan-out across gateways, resumes on the other one). */
  gateway_spread?: Record<string, number>;
  latency_ms: Record<string, Summary>;
  /** Mean ms per turn in the phases before the text streams, from the workers' histograms (queue_wait, claim_to_first_text). */
  phases_ms?: Record<string, number>;
  checks: Check[];
  passed: boolean;
  problems: string[];
  /** The ceiling: the full raw turn (loadtest/bench/raw-turn.ts) in the same run, with and without its history read. */
  raw_turn?: RawTurnComparison;
  /** Streaming: the server's CPU per delivered event beside bare uWS topic publishes of the same frames (loadtest/bench/raw-publish-run.ts). */
  fanout?: FanoutComparison;
  idle?: {
    /** `one per socket`, or how many users the sockets shared (per-user and per-token state then counted once per user). */
    users: string;
    /** RSS after the sockets idled `settle_s` at the step, and read at once when the step's handshakes were done. */
    steps: Array<{ sockets: number; gateway_rss_mib: number; at_once_mib: number }>;
    settle_s: number;
    /** The steps the slope is fitted over (from 3,000 sockets, when two steps are there). */
    slope_from_sockets: number;
    /** The slope of the settled readings. */
    kib_per_socket: number;
    /** The slope of the readings at once: mostly where the heap's garbage stood at each read. */
    kib_per_socket_at_once: number;
    sockets_per_gb: number;
    sockets_per_gib: number;
    base_rss_mib: number;
  };
  /** The embedded server's RSS at rest after a first start on an empty DATA_DIR and after a restart. */
  embedded_rest?: EmbeddedRest;
  /** `mid_stream`: followers whose run had not completed when they were dropped (the others resume a finished turn). */
  storm?: { dropped: number; mid_stream: number; all_caught_up_s: number; all_complete_s: number };
  soak?: {
    minutes: number;
    rate_per_s: number;
    /** The server processes' RSS summed, every 10 s. */
    rss_mib: Array<{ t_s: number; mib: number }>;
    per_process: Array<{ t_s: number; process: string; rss_mib: number; heap_used_mib: number }>;
    growth_pct: number;
    passed: boolean;
  };
}

export interface RawTurnComparison {
  /** What the raw turn did per turn. */
  work: string;
  with_history: ScenarioReport;
  without_history: ScenarioReport;
  /** Server-side CPU per turn over the raw turn's that reads the history (lower is better; 1 is the ceiling). */
  cpu_ratio: number;
  cpu_ratio_without_history: number;
  /** Turns/s over the raw turn's that reads the history (higher is better; 1 is the ceiling). */
  throughput_ratio: number;
  throughput_ratio_without_history: number;
}

export interface FanoutComparison {
  /** Thread events the run's sockets received (each frame on each socket once). */
  delivered: number;
  /** Server-side CPU (gateways + workers + Postgres + Redis) per delivered event, and the gateways' alone (µs). */
  server_us_per_delivered: number;
  gateway_us_per_delivered: number;
  raw_publish: RawPublishFigures;
}

export function compareFanout(ours: ScenarioReport, delivered: number, raw: RawPublishFigures): FanoutComparison {
  const gatewayS = ours.processes.filter((p) => /^(gateway|all)/.test(p.name)).reduce((sum, p) => sum + p.cpuS, 0);
  return {
    delivered,
    server_us_per_delivered: ((ours.server_cpu_ms_per_turn ?? NaN) * ours.turns * 1000) / delivered,
    gateway_us_per_delivered: (gatewayS * 1e6) / delivered,
    raw_publish: raw,
  };
}

function printFanout(f: FanoutComparison): string {
  const raw = f.raw_publish;
  return [
    table(['cost per delivered event (one frame on one socket)', 'µs', 'x raw uWS'], [
      ['this server: gateways + workers + Postgres + Redis', fixed(f.server_us_per_delivered, 1), fixed(f.server_us_per_delivered / raw.us_per_delivered, 1)],
      ['this server: gateways alone', fixed(f.gateway_us_per_delivered, 1), fixed(f.gateway_us_per_delivered / raw.us_per_delivered, 1)],
      ['raw uWS topic publish of the same frames, same sockets per thread, same timing', fixed(raw.us_per_delivered, 1), '1.0'],
    ]),
    `delivered: ${f.delivered} events to the run's sockets; raw: ${raw.frames} frames to ${raw.sockets} sockets (each to the sockets of its thread) = ${raw.delivered} delivered in ${fixed(raw.seconds, 2)} s, ${fixed(raw.cpu_ms, 0)} ms of CPU`,
  ].join('\n');
}

export function compareRaw(ours: ScenarioReport, withHistory: ScenarioReport, withoutHistory: ScenarioReport, work: string): RawTurnComparison {
  const cpu = (raw: ScenarioReport) => (ours.server_cpu_ms_per_turn ?? NaN) / (raw.server_cpu_ms_per_turn ?? NaN);
  return {
    work,
    with_history: withHistory,
    without_history: withoutHistory,
    cpu_ratio: cpu(withHistory),
    cpu_ratio_without_history: cpu(withoutHistory),
    throughput_ratio: ours.turns_per_s / withHistory.turns_per_s,
    throughput_ratio_without_history: ours.turns_per_s / withoutHistory.turns_per_s,
  };
}

const fixed = (value: number | null | undefined, digits = 1) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));

export function printScenario(r: ScenarioReport): string {
  const lines: string[] = [];
  lines.push(`\n== ${r.scenario} (topology ${r.topology}${r.services ? `, services ${r.services}` : ''}) ${r.passed ? 'PASS' : 'FAIL'}`);
  lines.push(`options: ${Object.entries(r.options).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (r.turns > 0) {
    lines.push('');
    lines.push(table(['throughput', 'value'], [
      ['window (s)', fixed(r.window_s, 2)],
      ['turns', r.turns],
      ['turns/s', fixed(r.turns_per_s)],
      ['events stored (the threads\' last_seq in Postgres, summed)', r.events],
      ['events per turn (stored / turns)', fixed(r.events_per_turn, 2)],
      ['events/s', fixed(r.events_per_s)],
      ['server-side CPU per turn (ms): gateways + workers + Postgres + Redis', fixed(r.server_cpu_ms_per_turn, 2)],
      ['SQL statements per turn (pg_stat_statements, nested included), of which BEGIN/COMMIT/...', `${fixed(r.statements_per_turn)}, ${fixed(r.transaction_control_per_turn)}`],
      ['round trips per turn (statements the servers sent)', fixed(r.round_trips_per_turn)],
      ['transactions per turn (pg_stat_database)', fixed(r.transactions_per_turn)],
      ['statements per turn seen by the servers\' pools (/metrics)', fixed(r.pool_statements_per_turn)],
    ]));
  }
  if (r.processes.length > 0) {
    lines.push('');
    lines.push(table(['process', 'CPU s', 'CPU % of a core', 'CPU ms/turn', 'RSS MiB', 'peak MiB'], r.processes.map((p) => [
      `${p.name}${p.kind === 'postgres' ? ' (all backends; private memory)' : ''}`, fixed(p.cpuS, 2), fixed(p.cpu_pct), fixed(p.cpu_ms_per_turn, 2), fixed(p.rssMiB), fixed(p.peakRssMiB),
    ])));
  }
  if (r.redis && r.redis.nodes.length > 0) lines.push('', printRedis(r, r.redis));
  const reads = Object.entries(r.client_reads ?? {});
  if (r.rows_written_per_turn !== undefined && r.turns > 0) lines.push(`Postgres rows written per turn (inserted + updated + deleted on the primary): ${fixed(r.rows_written_per_turn, 1)}`);
  if (reads.length > 0) lines.push(`clients' reads by the server that answered (convo_db_client_reads_total): ${reads.map(([key, n]) => `${key} ${n}`).join(', ')}`);
  if (r.gateway_spread) lines.push(`sockets on the gateways: ${Object.entries(r.gateway_spread).map(([key, n]) => `${key.replaceAll('_', ' ')} ${n}`).join(', ')}`);
  if (r.top_statements?.length) {
    lines.push('');
    lines.push(table(['statement (most database time first)', 'sent/nested', 'calls/turn', 'ms/turn'], r.top_statements.map((t) => [
      t.statement, t.toplevel ? 'sent' : 'nested', fixed(t.calls_per_turn, 2), fixed(t.ms_per_turn, 3),
    ])));
  }
  if (r.most_sent_statements?.length) {
    lines.push('');
    lines.push(table(['statement (sent most often first)', 'calls/turn', 'ms/turn'], r.most_sent_statements.map((t) => [
      t.statement, fixed(t.calls_per_turn, 2), fixed(t.ms_per_turn, 3),
    ])));
  }
  if (Object.keys(r.latency_ms).length > 0) {
    lines.push('');
    lines.push(latencyTable(r.latency_ms));
    const phases = Object.entries(r.phases_ms ?? {});
    if (phases.length > 0) lines.push(`worker phases, mean ms per turn: ${phases.map(([name, ms]) => `${name} ${fixed(ms, 1)}`).join(', ')}`);
  }
  if (r.raw_turn) lines.push('', printRawTurn(r, r.raw_turn));
  if (r.fanout) lines.push('', printFanout(r.fanout));
  if (r.idle) {
    lines.push('');
    lines.push(`users: ${r.idle.users}`);
    lines.push(table(['idle sockets', `gateway RSS MiB after ${r.idle.settle_s} s idle`, 'at once'], r.idle.steps.map((s) => [s.sockets, fixed(s.gateway_rss_mib), fixed(s.at_once_mib)])));
    lines.push(`slope from ${r.idle.slope_from_sockets} sockets to the last step: ${fixed(r.idle.kib_per_socket, 2)} KiB of gateway RSS per socket -> ${fixed(r.idle.sockets_per_gb, 0)} sockets per GB (${fixed(r.idle.sockets_per_gib, 0)} per GiB); base ${fixed(r.idle.base_rss_mib)} MiB (${fixed((r.idle.base_rss_mib * 2 ** 20) / 1e6)} MB)`);
    lines.push(`read at once after each step's handshakes: ${fixed(r.idle.kib_per_socket_at_once, 2)} KiB per socket (the heap's garbage from the handshakes, collected at V8's pace)`);
  }
  if (r.embedded_rest) {
    const mb = (mib: number) => fixed((mib * 2 ** 20) / 1e6, 0);
    const rows = ([['first start on an empty DATA_DIR', r.embedded_rest.first_start], ['restart on the same DATA_DIR', r.embedded_rest.restart]] as const).map(([name, c]) => [
      name, fixed(c.ready_ms, 0), fixed(c.rss_mib[0]), fixed(c.rss_mib.at(-1)), `${fixed(c.min_mib)}-${fixed(c.max_mib)}`, `${mb(c.min_mib)}-${mb(c.max_mib)}`,
    ]);
    lines.push('');
    lines.push(`the embedded server at rest (PGlite, \`npm start\`'s node flags): RSS every second from ${REST_FROM_S} s to ${REST_TO_S} s after /ready answered`);
    lines.push(table(['embedded', 'spawn to /ready (ms)', `RSS at ${REST_FROM_S} s (MiB)`, `RSS at ${REST_TO_S} s (MiB)`, 'RSS range (MiB)', 'RSS range (MB)'], rows));
  }
  if (r.storm) {
    lines.push(`\nreconnect storm: ${r.storm.dropped} followers dropped (${r.storm.mid_stream} mid-stream); all resumed and caught up ${fixed(r.storm.all_caught_up_s, 2)} s after the drop, all complete (agent_completed) after ${fixed(r.storm.all_complete_s, 2)} s`);
  }
  if (r.soak) {
    lines.push(`\nsoak: ${r.soak.minutes} min at ${fixed(r.soak.rate_per_s)} turns/s; server RSS growth ${fixed(r.soak.growth_pct, 2)}% (limit 5%; the last minute against the second, so at least 3 minutes) ${r.soak.passed ? 'PASS' : 'FAIL'}`);
    const names = [...new Set(r.soak.per_process.map((s) => s.process))];
    const at = (t: number) => names.map((name) => {
      const s = r.soak!.per_process.filter((x) => x.process === name && x.t_s >= t)[0];
      return s ? `${fixed(s.rss_mib)} / ${fixed(s.heap_used_mib)}` : '-';
    });
    const times = [...new Set(r.soak.per_process.map((s) => s.t_s))].filter((t, i, all) => i === 0 || i === all.length - 1 || t % 120 === 0);
    lines.push(table(['t (s)', ...names.map((n) => `${n} RSS / heap used MiB`)], times.map((t) => [t, ...at(t)])));
  }
  lines.push('');
  lines.push(table(['correctness', 'ok', 'of'], r.checks.map((c) => [c.name, c.ok, c.total])));
  if (r.problems.length > 0) lines.push(`problems (first ${r.problems.length}):\n  ${r.problems.join('\n  ')}`);
  return lines.join('\n');
}

function printRedis(r: ScenarioReport, redis: RedisFigures): string {
  const cpuOfNode = (name: string) => r.processes.find((p) => p.name === name);
  return [
    table(['redis node', 'role', 'commands', 'commands/s', 'commands/turn', 'CPU % of a core', 'RSS MiB'], redis.nodes.map((n) => [
      n.name, n.role, n.commands, fixed(n.commands_per_s, 0), fixed(n.commands_per_turn, 1), fixed(cpuOfNode(n.name)?.cpu_pct), fixed(cpuOfNode(n.name)?.rssMiB),
    ])),
    `redis commands on the serving nodes (${redis.nodes.some((n) => n.role === 'master') ? 'the masters' : 'the single node'}; INFO total_commands_processed): ${fixed(redis.commands_per_s, 0)}/s, ${fixed(redis.commands_per_turn, 1)} per turn, ${fixed(redis.commands_per_event, 2)} per stored event, ${fixed(redis.commands_per_delivered, 3)} per delivered event`,
    `most run (per turn): ${redis.top_commands.map((c) => `${c.command} ${r.turns ? fixed(c.per_turn, 2) : `${fixed(c.per_s, 0)}/s`}`).join(', ')}`,
  ].join('\n');
}

/** Server-side CPU ms per turn of the processes whose names match, or null when none does. */
function cpuOf(r: ScenarioReport, name: RegExp): number | null {
  const procs = r.processes.filter((p) => name.test(p.name));
  return procs.length ? procs.reduce((sum, p) => sum + (p.cpu_ms_per_turn ?? NaN), 0) : null;
}

/** The server beside the full raw turn, side by side: throughput, CPU per turn by process, counters, latency. */
function printRawTurn(r: ScenarioReport, c: RawTurnComparison): string {
  const runs = [r, c.with_history, c.without_history];
  const ratio = (f: (x: ScenarioReport) => number | null | undefined, digits = 2, suffix = 'x') => {
    const ours = f(r);
    return [c.with_history, c.without_history].map((raw) => {
      const value = (ours ?? NaN) / (f(raw) ?? NaN);
      return Number.isFinite(value) ? `${value.toFixed(digits)}${suffix}` : '-';
    });
  };
  const row = (label: string, f: (x: ScenarioReport) => number | null | undefined, digits = 2, withRatio = true): Array<string | number> =>
    [label, ...runs.map((x) => fixed(f(x), digits)), ...(withRatio ? ratio(f) : ['', ''])];
  const byProcess: Array<[string, RegExp]> = [
    ['  gateways', /^(raw-)?gateway/],
    ['  workers', /^(raw-)?worker/],
    ['  gateway and worker in one process', /^all$/],
    ...(r.processes.some((p) => p.name === 'all') ? [['  gateway + worker (to compare with one process)', /^((raw-)?(gateway|worker)\S*|all)$/] as [string, RegExp]] : []),
    ['  Postgres', /^postgres$/],
    ['  Redis', /^redis$/],
  ];
  const latency = (x: ScenarioReport, name: string, p: 'p50' | 'p99') => x.latency_ms[name]?.[p];
  const rows: Array<Array<string | number>> = [
    row('turns', (x) => x.turns, 0, false),
    [
      'turns/s', ...runs.map((x) => fixed(x.turns_per_s)),
      ...[c.throughput_ratio, c.throughput_ratio_without_history].map((v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '-')),
    ],
    row('server-side CPU per turn (ms): gateways + workers + Postgres + Redis', (x) => x.server_cpu_ms_per_turn),
    ...byProcess.filter(([, re]) => runs.some((x) => cpuOf(x, re) !== null)).map(([label, re]) => row(label, (x) => cpuOf(x, re))),
    row('events stored per turn', (x) => x.events_per_turn, 1, false),
    row('round trips per turn (statements sent)', (x) => x.round_trips_per_turn, 1),
    row('transactions per turn', (x) => x.transactions_per_turn, 1),
    row('turn p50 (ms)', (x) => latency(x, 'full_turn', 'p50'), 0),
    row('turn p99 (ms)', (x) => latency(x, 'full_turn', 'p99'), 0),
    row('fan-out lag p99 (ms)', (x) => latency(x, 'fanout_lag', 'p99'), 0),
  ];
  const failed = [c.with_history, c.without_history].flatMap((x) => x.checks.filter((k) => k.ok !== k.total).map((k) => `${x.scenario}: ${k.name} ${k.ok}/${k.total}`));
  const delayed = r.options.delayMs ? ' (the model streams with a delay: every run waits for it, so turns/s and latency compare the waits too)' : '';
  return [
    table(['the full raw turn, same services, same run', 'this server', 'raw, reading the history', 'raw, without', 'ratio (reading)', 'ratio (without)'], rows),
    `raw turn per turn: ${c.work}; E = ${fixed(r.events_per_turn)} (this server's events per turn in this run)`,
    `server-side CPU per turn / the raw turn's: ${fixed(c.cpu_ratio, 2)}x reading the history, ${fixed(c.cpu_ratio_without_history, 2)}x without`,
    `turns/s / the raw turn's: ${fixed(c.throughput_ratio * 100)}% reading the history, ${fixed(c.throughput_ratio_without_history * 100)}% without${delayed}`,
    failed.length ? `raw turn checks FAILED (its figures are not a ceiling): ${failed.join('; ')}` : 'raw turn checks: every event delivered once and in order, every run completed, on every socket',
  ].join('\n');
}

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}
