/**
 * The store's statement metrics, as kysely's `log` option: kysely calls it once per statement
 * (inside transactions too) with the SQL text and the time it took, and once per failed one.
 */
import type { LogEvent } from 'kysely';
import { metrics, statementKind, type StatementKind } from './record.js';

export function observeQuery(event: LogEvent, kind: StatementKind = statementKind(event.query.sql)): void {
  if (event.level === 'error') {
    metrics.dbError((event.error as { code?: unknown })?.code as string | undefined);
    return;
  }
  metrics.observeStatement(kind, event.queryDurationMillis / 1000);
}
