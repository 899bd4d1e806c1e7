/**
 * The figures read from outside the server at the start and end of a measured window: CPU and
 * memory of every process (/proc), the database's statements and transactions (pg_stat_statements,
 * pg_stat_database), and the servers' own counters (/metrics).
 */
import pg from 'pg';
import { scrape, total, type Scrape } from '../../test/support/metrics-scrape.js';
import { cpuBetween, rssOf, sampleGroup, tree, type GroupSample } from './procstat.js';
import type { Proc } from './processes.js';
import type { Services } from './services.js';

export interface Snapshot {
  groups: Map<string, GroupSample>;
  statements?: number;
  /** Of `statements`: those the servers sent (pg_stat_statements `toplevel`), i.e. round trips; the rest ran inside functions. */
  topLevel?: number;
  /** Of `statements`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE. */
  transactionControl?: number;
  /** Per statement text: calls and execution time (ms), for the most expensive statements of a window. */
  byStatement?: Map<string, { calls: number; ms: number; toplevel: boolean }>;
  transactions?: number;
  /** Statements the servers timed themselves (convo_db_statement_seconds), summed over processes. */
  poolStatements: number;
  eventsAppended: number;
  /** Sums (s) and counts of the workers' phase histograms: job created to claimed, claimed to the model's first text. */
  phases: Record<PhaseName, { sum: number; count: number }>;
  at: number;
}

/** Where a turn's time goes before its text streams, from the workers' own histograms. */
export const PHASES = { queue_wait: 'convo_queue_wait_seconds', claim_to_first_text: 'convo_time_to_first_delta_seconds', claim_to_end: 'convo_turn_duration_seconds' } as const;
export type PhaseName = keyof typeof PHASES;

/** A histogram's sum over all its series (total() gives the count). */
function histogramSum(metrics: Scrape, name: string): number {
  return (metrics.samples.get(`${name}_sum`)?.metrics ?? []).reduce((sum, sample) => sum + Number(sample.value ?? 0), 0);
}

export interface GroupFigures {
  name: string;
  /** `server`: a server process, or a part of the raw turn (in its own run, in place of the server). */
  kind: 'server' | 'postgres' | 'redis' | 'llm-sim' | 'driver';
  cpuS: number;
  rssMiB: number;
  peakRssMiB: number;
}

export class Meter {
  private readonly client: pg.Client;

  private constructor(private readonly services: Services, client: pg.Client, private readonly dbName: string) {
    this.client = client;
  }

  static async open(services: Services): Promise<Meter> {
    const client = new pg.Client({ connectionString: services.databaseUrl });
    await client.connect();
    return new Meter(services, client, new URL(services.databaseUrl).pathname.slice(1));
  }

  close(): Promise<void> {
    return this.client.end();
  }

  /** The database's processes: the private cluster's whole tree, or the run's own backends on an existing server. */
  private async postgresPids(): Promise<number[]> {
    if (this.services.postgresRoot) return tree(this.services.postgresRoot);
    const { rows } = await this.client.query('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [this.dbName]);
    return rows.map((r) => Number(r.pid));
  }

  async snapshot(procs: Proc[]): Promise<Snapshot> {
    const groups = new Map<string, GroupSample>();
    // CPU first, all at once: the other reads take time and must not fall inside some windows only.
    const pgPids = await this.postgresPids();
    for (const proc of procs) groups.set(proc.name, sampleGroup([proc.pid]));
    groups.set('postgres', sampleGroup(pgPids));
    if (this.services.redisPid) groups.set('redis', sampleGroup([this.services.redisPid]));
    const at = performance.now();
    let statements: number | undefined;
    let topLevel: number | undefined;
    let transactionControl: number | undefined;
    let byStatement: Snapshot['byStatement'];
    if (this.services.statements) {
      const { rows } = await this.client.query(
        `select query, toplevel, sum(calls) as calls, sum(total_exec_time) as ms
         from pg_stat_statements
         where dbid = (select oid from pg_database where datname = current_database()) and query not like '%pg_stat%'
         group by query, toplevel`,
      );
      byStatement = new Map();
      statements = topLevel = transactionControl = 0;
      for (const row of rows) {
        const calls = Number(row.calls);
        statements += calls;
        if (row.toplevel) topLevel += calls;
        if (/^\s*(begin|commit|rollback|savepoint|release)/i.test(row.query)) transactionControl += calls;
        byStatement.set(`${row.toplevel ? 'top' : 'in'}\u0000${row.query}`, { calls, ms: Number(row.ms), toplevel: row.toplevel });
      }
    }
    const { rows } = await this.client.query('select xact_commit + xact_rollback as xacts from pg_stat_database where datname = current_database()');
    const transactions = Number(rows[0].xacts);
    let poolStatements = 0;
    let eventsAppended = 0;
    const phases = Object.fromEntries(Object.keys(PHASES).map((k) => [k, { sum: 0, count: 0 }])) as Snapshot['phases'];
    for (const proc of procs) {
      if (!proc.metricsUrl) continue;
      const metrics = await scrape(proc.metricsUrl).catch(() => undefined);
      if (!metrics) continue;
      poolStatements += total(metrics, 'convo_db_statement_seconds');
      eventsAppended += total(metrics, 'convo_events_appended_total');
      for (const [phase, name] of Object.entries(PHASES) as Array<[PhaseName, string]>) {
        phases[phase].sum += histogramSum(metrics, name);
        phases[phase].count += total(metrics, name);
      }
    }
    return { groups, statements, topLevel, transactionControl, byStatement, transactions, poolStatements, eventsAppended, phases, at };
  }

  /** How long after the servers stop their backends' statistics are in pg_stat_database (each flushes them as it exits). */
  static settleMs = 1_200;
}

/**
 * The statements that took the most database time in the window (what to look at first), or with
 * `by: 'calls_per_turn'` the most frequent; `sentOnly` keeps the statements the servers sent (the
 * top `count` of those, not those among the top `count` of all).
 */
export function topStatements(before: Snapshot, after: Snapshot, turns: number, options: { count?: number; by?: 'ms_per_turn' | 'calls_per_turn'; sentOnly?: boolean } = {}) {
  const { count = 8, by = 'ms_per_turn', sentOnly = false } = options;
  if (!after.byStatement || turns === 0) return [];
  const rows = [...after.byStatement].map(([key, b]) => {
    const a = before.byStatement?.get(key);
    const text = key.slice(key.indexOf('\u0000') + 1).replace(/\s+/g, ' ').trim();
    return { statement: text.length > 110 ? `${text.slice(0, 107)}...` : text, toplevel: b.toplevel, calls_per_turn: (b.calls - (a?.calls ?? 0)) / turns, ms_per_turn: (b.ms - (a?.ms ?? 0)) / turns };
  });
  return rows.filter((r) => r.calls_per_turn > 0 && (!sentOnly || r.toplevel)).sort((x, y) => y[by] - x[by]).slice(0, count);
}

export function figures(before: Snapshot, after: Snapshot, procs: Proc[]): GroupFigures[] {
  const out: GroupFigures[] = [];
  const add = (name: string, kind: GroupFigures['kind'], root?: number) => {
    const a = before.groups.get(name);
    const b = after.groups.get(name);
    if (!a || !b) return;
    const memory = kind === 'postgres' ? rssOf(b, 'anon') : rssOf(b);
    const peak = [...b.byPid.values()].reduce((sum, s) => sum + s.peakRssBytes, 0);
    out.push({ name, kind, cpuS: cpuBetween(a, b, root), rssMiB: memory / 2 ** 20, peakRssMiB: (kind === 'postgres' ? memory : peak) / 2 ** 20 });
  };
  for (const proc of procs) {
    const kind = proc.role === 'llm-sim' || proc.role === 'driver' ? proc.role : 'server';
    add(proc.name, kind);
  }
  const pgRoot = [...(after.groups.get('postgres')?.byPid.keys() ?? [])][0];
  add('postgres', 'postgres', pgRoot);
  add('redis', 'redis');
  return out;
}
