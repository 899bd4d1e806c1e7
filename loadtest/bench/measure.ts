/**
 * The figures read from outside the server at the start and end of a measured window: CPU and
 * memory of every process (/proc), the database's statements and transactions (pg_stat_statements,
 * pg_stat_database), and the servers' own counters (/metrics).
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { scrape, total, type Scrape } from '../../test/support/metrics-scrape.js';
import { cpuBetween, rssOf, sampleGroup, tree, type GroupSample } from './procstat.js';
import type { Proc } from './processes.js';
import type { RedisNode, Services } from './services.js';

/** The Redis servers and read replica of the runs being measured now (the single node, or the cluster and the replica). */
export interface Backends {
  redisNodes: RedisNode[];
  /** The read replica's postmaster, when there is one. */
  replicaRoot?: number;
}

/** One Redis node's counters (INFO): commands processed in all and by command. */
export interface RedisCounters {
  commands: number;
  byCommand: Map<string, number>;
}

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
  /** Rows inserted, updated and deleted in the run's database on the primary (pg_stat_database; settled like `transactions`). */
  rowsWritten?: number;
  /** Per Redis node (by name): INFO stats and commandstats. */
  redis: Map<string, RedisCounters>;
  /** The gateways' clients' reads (convo_db_client_reads_total), by `read/server` (e.g. `replay/replica`). */
  clientReads: Record<string, number>;
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
  private backends: Backends;
  private readonly redisClients = new Map<string, Redis>();

  private constructor(private readonly services: Services, client: pg.Client, private readonly dbName: string) {
    this.client = client;
    this.backends = { redisNodes: services.redisNodes };
  }

  /** Which Redis nodes and replica the next snapshots read (the runs of one mode use one set). */
  use(backends: Backends): void {
    this.backends = backends;
  }

  /** INFO stats and commandstats of a node; undefined when it does not answer. */
  private async redisCounters(node: RedisNode): Promise<RedisCounters | undefined> {
    let redis = this.redisClients.get(node.url);
    if (!redis) {
      redis = new Redis(node.url, { maxRetriesPerRequest: 1, lazyConnect: false });
      redis.on('error', () => {});
      this.redisClients.set(node.url, redis);
    }
    try {
      const text = await redis.info('all');
      const byCommand = new Map<string, number>();
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand.set(match[1]!, Number(match[2]));
      return { commands: Number(/total_commands_processed:(\d+)/.exec(text)?.[1] ?? NaN), byCommand };
    } catch {
      return undefined;
    }
  }

  static async open(services: Services): Promise<Meter> {
    const client = new pg.Client({ connectionString: services.databaseUrl });
    await client.connect();
    return new Meter(services, client, new URL(services.databaseUrl).pathname.slice(1));
  }

  async close(): Promise<void> {
    for (const redis of this.redisClients.values()) redis.disconnect();
    await this.client.end();
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
    if (this.backends.replicaRoot) groups.set('postgres-replica', sampleGroup(tree(this.backends.replicaRoot)));
    for (const node of this.backends.redisNodes) if (node.pid) groups.set(node.name, sampleGroup([node.pid]));
    const at = performance.now();
    const redis = new Map<string, RedisCounters>();
    await Promise.all(this.backends.redisNodes.map(async (node) => {
      const counters = await this.redisCounters(node);
      if (counters) redis.set(node.name, counters);
    }));
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
    const { rows } = await this.client.query('select xact_commit + xact_rollback as xacts, tup_inserted + tup_updated + tup_deleted as rows from pg_stat_database where datname = current_database()');
    const transactions = Number(rows[0].xacts);
    const rowsWritten = Number(rows[0].rows);
    const clientReads: Record<string, number> = {};
    let poolStatements = 0;
    let eventsAppended = 0;
    const phases = Object.fromEntries(Object.keys(PHASES).map((k) => [k, { sum: 0, count: 0 }])) as Snapshot['phases'];
    for (const proc of procs) {
      if (!proc.metricsUrl) continue;
      const metrics = await scrape(proc.metricsUrl).catch(() => undefined);
      if (!metrics) continue;
      poolStatements += total(metrics, 'convo_db_statement_seconds');
      eventsAppended += total(metrics, 'convo_events_appended_total');
      for (const sample of metrics.samples.get('convo_db_client_reads_total')?.metrics ?? []) {
        const key = `${sample.labels?.read}/${sample.labels?.server}`;
        clientReads[key] = (clientReads[key] ?? 0) + Number(sample.value ?? 0);
      }
      for (const [phase, name] of Object.entries(PHASES) as Array<[PhaseName, string]>) {
        phases[phase].sum += histogramSum(metrics, name);
        phases[phase].count += total(metrics, name);
      }
    }
    return { groups, statements, topLevel, transactionControl, byStatement, transactions, rowsWritten, redis, clientReads, poolStatements, eventsAppended, phases, at };
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
  const rootOf = (name: string) => [...(after.groups.get(name)?.byPid.keys() ?? [])][0];
  add('postgres', 'postgres', rootOf('postgres'));
  add('postgres-replica', 'postgres', rootOf('postgres-replica'));
  for (const name of after.groups.keys()) if (/^redis(-|$)/.test(name)) add(name, 'redis');
  return out;
}
