/**
 * Counts the SQL statements a store sends, by kind, with the time they took: each is one round
 * trip to the database (kysely runs `begin` and `commit` as statements of their own, so they are
 * counted too). Fed by kysely's `log` hook, which sees every statement on either backend, so the
 * figure is the same for Postgres and PGlite. A plain object: a benchmark prints statements per
 * turn from it, and metrics can read it without this module knowing about them.
 */
export type StatementKind = 'select' | 'insert' | 'update' | 'delete' | 'other';

export const STATEMENT_KINDS: readonly StatementKind[] = ['select', 'insert', 'update', 'delete', 'other'];

export interface KindStats {
  count: number;
  /** Total time from sending the statement to its answer, in milliseconds. */
  ms: number;
}

export interface StatementStats extends KindStats {
  /** Statements that failed (counted in `count` and their kind too). */
  errors: number;
  byKind: Record<StatementKind, KindStats>;
}

export class StatementCounter {
  readonly stats: StatementStats = {
    count: 0,
    ms: 0,
    errors: 0,
    byKind: Object.fromEntries(STATEMENT_KINDS.map((kind) => [kind, { count: 0, ms: 0 }])) as Record<StatementKind, KindStats>,
  };

  record(sql: string, ms: number, failed = false): void {
    const kind = this.stats.byKind[statementKind(sql)];
    kind.count++;
    kind.ms += ms;
    this.stats.count++;
    this.stats.ms += ms;
    if (failed) this.stats.errors++;
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

/**
 * The statement's kind by its leading keyword: a statement that starts with `with` is `other`
 * whatever its CTEs do, and a call of one of the write functions (`select * from
 * append_events(...)`, `select record_turn(...)`) is a `select`.
 */
export function statementKind(sql: string): StatementKind {
  const word = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase();
  return word === 'select' || word === 'insert' || word === 'update' || word === 'delete' ? word : 'other';
}

/** Every store of this process counts here unless it is given a counter of its own. */
export const processStatements = new StatementCounter();

/** Statements this process has sent to its stores so far. */
export function statementCount(): number {
  return processStatements.statementCount();
}
