/**
 * Counts the SQL statements a store sends, by kind, with the time they took: each is one round
 * trip to the database (kysely runs `begin` and `commit` as statements of their own, so they are
 * counted too). Fed by kysely's `log` hook, which sees every statement on either backend, so the
 * figure is the same for Postgres and PGlite. A plain object: a benchmark prints statements per
 * turn from it, and metrics can read it without this module knowing about them. The kind comes
 * from the caller (metrics' `statementKind`, worked out once per statement for both).
 */
import type { StatementKind as MetricKind } from '../metrics/index.js';

export type StatementKind = 'select' | 'insert' | 'update' | 'delete' | 'other';

export const STATEMENT_KINDS: readonly StatementKind[] = ['select', 'insert', 'update', 'delete', 'other'];

export interface KindStats {
  count: number;
  /** Total time from sending the statement to its answer, in milliseconds. */
  ms: number;
}

export interface StatementStats extends KindStats {
  byKind: Record<StatementKind, KindStats>;
}

export class StatementCounter {
  readonly stats: StatementStats = {
    count: 0,
    ms: 0,
    byKind: Object.fromEntries(STATEMENT_KINDS.map((kind) => [kind, { count: 0, ms: 0 }])) as Record<StatementKind, KindStats>,
  };

  /** One statement of `kind` that took `ms` (failed ones too): `with` and transaction control count as `other`. */
  record(kind: MetricKind, ms: number): void {
    const stats = this.stats.byKind[kind === 'with' || kind === 'transaction' ? 'other' : kind];
    stats.count++;
    stats.ms += ms;
    this.stats.count++;
    this.stats.ms += ms;
  }

  /** Statements sent so far. */
  statementCount(): number {
    return this.stats.count;
  }

  /** A copy of the figures, to subtract from a later one. */
  snapshot(): StatementStats {
    return structuredClone(this.stats);
  }
}

/** Every store of this process counts here unless it is given a counter of its own. */
export const processStatements = new StatementCounter();
