/** The benchmark's printed tables, from the result object that is also written as JSON. */
import { latencyTable, table, type Summary } from '../stats.js';
import type { Check } from './messages.js';
import type { GroupFigures } from './measure.js';

export interface ScenarioReport {
  scenario: string;
  topology: string;
  options: Record<string, unknown>;
  window_s: number;
  turns: number;
  turns_per_s: number;
  events: number;
  events_per_s: number;
  events_per_turn: number;
  /** Mean size of an event's frame as the clients received it; the ceiling's rows and publishes are this size. */
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
  latency_ms: Record<string, Summary>;
  checks: Check[];
  passed: boolean;
  problems: string[];
  ceiling?: {
    turns: number;
    turns_per_s: number;
    machine_cpu_ms_per_turn: number;
    processes: GroupFigures[];
    events_per_turn: number;
    /** Our server-side CPU per turn over the ceiling's machine CPU per turn (lower is better; 1 is the floor). */
    cpu_ratio: number;
    /** Our turns/s over the ceiling's (higher is better; 1 is the ceiling). */
    throughput_ratio: number;
  };
  idle?: { steps: Array<{ sockets: number; gateway_rss_mib: number }>; kib_per_socket: number; sockets_per_gib: number; base_rss_mib: number };
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

const fixed = (value: number | null | undefined, digits = 1) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));

export function printScenario(r: ScenarioReport): string {
  const lines: string[] = [];
  lines.push(`\n== ${r.scenario} (topology ${r.topology}) ${r.passed ? 'PASS' : 'FAIL'}`);
  lines.push(`options: ${Object.entries(r.options).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (r.turns > 0) {
    lines.push('');
    lines.push(table(['throughput', 'value'], [
      ['window (s)', fixed(r.window_s, 2)],
      ['turns', r.turns],
      ['turns/s', fixed(r.turns_per_s)],
      ['events stored (per turn)', `${r.events} (${fixed(r.events_per_turn)})`],
      ['events/s', fixed(r.events_per_s)],
      ['server-side CPU per turn (ms): gateways + workers + Postgres + Redis', fixed(r.server_cpu_ms_per_turn, 2)],
      ['SQL statements per turn (pg_stat_statements, nested included), of which BEGIN/COMMIT/...', `${fixed(r.statements_per_turn)}, ${fixed(r.transaction_control_per_turn)}`],
      ['round trips per turn (statements the servers sent)', fixed(r.round_trips_per_turn)],
      ['transactions per turn (pg_stat_database)', fixed(r.transactions_per_turn)],
      ['statements per turn seen by the servers\' pools (/metrics)', fixed(r.pool_statements_per_turn)],
    ]));
  }
  lines.push('');
  lines.push(table(['process', 'CPU s', 'CPU % of a core', 'CPU ms/turn', 'RSS MiB', 'peak MiB'], r.processes.map((p) => [
    `${p.name}${p.kind === 'postgres' ? ' (all backends; private memory)' : ''}`, fixed(p.cpuS, 2), fixed(p.cpu_pct), fixed(p.cpu_ms_per_turn, 2), fixed(p.rssMiB), fixed(p.peakRssMiB),
  ])));
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
  }
  if (r.ceiling) {
    const c = r.ceiling;
    lines.push('');
    lines.push(table(['raw ceiling (same Postgres and Redis, same run)', 'value'], [
      ['per turn: 1 BullMQ no-op job + N publishes + N rows in one INSERT', `N = ${Math.round(c.events_per_turn)}, ${Math.round(r.mean_event_chars)} bytes each`],
      ['turns', c.turns],
      ['turns/s', fixed(c.turns_per_s)],
      ['machine CPU per turn (ms): ceiling process + Postgres + Redis', fixed(c.machine_cpu_ms_per_turn, 2)],
      ['our server-side CPU per turn / ceiling\'s', `${fixed(c.cpu_ratio, 2)}x`],
      ['our turns/s / ceiling\'s', `${fixed(c.throughput_ratio * 100)}%${r.options.delayMs ? ' (not comparable: the run waits for the model\'s token delay)' : ''}`],
    ]));
  }
  if (r.idle) {
    lines.push('');
    lines.push(table(['idle sockets', 'gateway RSS MiB'], r.idle.steps.map((s) => [s.sockets, fixed(s.gateway_rss_mib)])));
    lines.push(`slope: ${fixed(r.idle.kib_per_socket, 2)} KiB of gateway RSS per socket -> ${fixed(r.idle.sockets_per_gib, 0)} sockets per GiB; base ${fixed(r.idle.base_rss_mib)} MiB`);
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

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}
