/**
 * The figures read from outside the server at the start and end of a measured window: CPU and
 * memory of every process (/proc), the database's statements and transactions (pg_stat_statements,
 * pg_stat_database), and the servers' own counters (/metrics).
 */
import pg from 'pg';
import { scrape, total } from '../../test/support/metrics-scrape.js';
import { cpuBetween, rssOf, sampleGroup, tree, type GroupSample } from './procstat.js';
import type { Proc } from './processes.js';
import type { Services } from './services.js';

export interface Snapshot {
  groups: Map<string, GroupSample>;
  statements?: number;
  /** Of `statements`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE. */
  transactionControl?: number;
  transactions?: number;
  /** Statements the servers timed themselves (convo_db_statement_seconds), summed over processes. */
  poolStatements: number;
  eventsAppended: number;
  at: number;
}

export interface GroupFigures {
  name: string;
  kind: 'server' | 'postgres' | 'redis' | 'llm-sim' | 'driver' | 'ceiling';
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
    let transactionControl: number | undefined;
    if (this.services.statements) {
      const { rows } = await this.client.query(
        `select coalesce(sum(calls), 0) as calls,
           coalesce(sum(calls) filter (where query ~* '^\\s*(begin|commit|rollback|savepoint|release)'), 0) as control
         from pg_stat_statements
         where dbid = (select oid from pg_database where datname = current_database()) and query not like '%pg_stat%'`,
      );
      statements = Number(rows[0].calls);
      transactionControl = Number(rows[0].control);
    }
    const { rows } = await this.client.query('select xact_commit + xact_rollback as xacts from pg_stat_database where datname = current_database()');
    const transactions = Number(rows[0].xacts);
    let poolStatements = 0;
    let eventsAppended = 0;
    for (const proc of procs) {
      if (!proc.metricsUrl) continue;
      const metrics = await scrape(proc.metricsUrl).catch(() => undefined);
      if (!metrics) continue;
      poolStatements += total(metrics, 'convo_db_statement_seconds');
      eventsAppended += total(metrics, 'convo_events_appended_total');
    }
    return { groups, statements, transactionControl, transactions, poolStatements, eventsAppended, at };
  }

  /** Statistics in pg_stat_database are flushed by each backend about once a second: wait before the last read. */
  static settleMs = 1_200;
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
    const kind = proc.role === 'llm-sim' || proc.role === 'driver' || proc.role === 'ceiling' ? proc.role : 'server';
    add(proc.name, kind);
  }
  const pgRoot = [...(after.groups.get('postgres')?.byPid.keys() ?? [])][0];
  add('postgres', 'postgres', pgRoot);
  add('redis', 'redis');
  return out;
}
