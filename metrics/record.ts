/**
 * The calls the rest of the code makes, one line at each site: `metrics.frameIn(bytes)`. They keep
 * label values inside their closed lists, so a caller cannot create an unbounded series.
 */
import { CloseCodes, isErrorCode } from '../protocol/codes.js';
import * as m from './definitions.js';

/** Close codes that get a series of their own; any other code a peer sends counts as "other". */
const KNOWN_CLOSE_CODES = new Set<number>([1000, 1005, 1006, ...Object.values(CloseCodes)]);

/** How an attempt ended; `error`: it threw (e.g. the database stayed unreachable) and the queue retries it. */
export type TurnMetricOutcome = 'completed' | 'cancelled' | 'failed' | 'released' | 'fenced' | 'error';
/** The redis_errors_total label of each connection role. */
const REDIS_CLIENTS = { publish: 'broker', subscribe: 'broker', queue: 'queue', 'queue-blocking': 'queue', commands: 'tickets', limits: 'limits' } as const;

/** A worker's background tasks (see backgroundTasks). */
export type BackgroundTask = 'heartbeat' | 'sweep' | 'prune';
export type StatementKind = 'select' | 'insert' | 'update' | 'delete' | 'with' | 'transaction' | 'other';

const STATEMENT_KINDS: Record<string, StatementKind> = {
  select: 'select', insert: 'insert', update: 'update', delete: 'delete', with: 'with',
  begin: 'transaction', commit: 'transaction', rollback: 'transaction', savepoint: 'transaction', release: 'transaction',
};

/** The kind of an SQL statement from its first keyword. */
export function statementKind(sqlText: string): StatementKind {
  const match = /^\s*\(?\s*([a-z]+)/i.exec(sqlText);
  return (match && STATEMENT_KINDS[match[1]!.toLowerCase()]) || 'other';
}

/** Where the top-level `timestamp` of a stored event's frame starts (see fanoutLagOf). */
const TIMESTAMP_KEY = '"timestamp":"';

export const metrics = {
  connectionOpened(): void {
    m.connectionsOpened.inc();
    m.connectionsOpen.inc();
  },
  connectionClosed(code: number): void {
    m.connectionsOpen.dec();
    m.connectionsClosed.labels(KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other').inc();
  },
  frameIn(bytes: number): void {
    m.framesIn.inc();
    m.frameBytesIn.inc(bytes);
  },
  /** `count` sockets got the same frame (a topic publish reaches every subscriber). */
  frameOut(frame: string, count = 1): void {
    if (count <= 0) return;
    m.framesOut.inc(count);
    m.frameBytesOut.inc(Buffer.byteLength(frame) * count);
  },
  errorSent(code: string): void {
    m.errorsSent.labels(isErrorCode(code) ? code : 'other').inc();
  },
  backpressureClose(): void {
    m.backpressureCloses.inc();
  },
  replay(events: number): void {
    m.replaySize.observe(events);
  },
  /**
   * Fan-out lag of a stored event's frame at the moment it is forwarded. The gateway forwards
   * frames without parsing them, so the timestamp is found by text: the last top-level
   * `"timestamp":"` (a nested one inside a string value would be escaped, `\"timestamp\"`).
   */
  fanout(frame: string, now = Date.now()): void {
    const at = frame.lastIndexOf(TIMESTAMP_KEY);
    if (at < 0) return;
    const start = at + TIMESTAMP_KEY.length;
    const stamp = Date.parse(frame.slice(start, frame.indexOf('"', start)));
    if (Number.isFinite(stamp)) m.fanoutLag.observe(Math.max(0, now - stamp) / 1000);
  },
  turnEnded(outcome: TurnMetricOutcome, seconds: number): void {
    m.turns.labels(outcome).inc();
    m.turnDuration.labels(outcome).observe(seconds);
  },
  queueWait(seconds: number): void {
    m.queueWait.observe(Math.max(0, seconds));
  },
  firstDelta(seconds: number): void {
    m.timeToFirstDelta.observe(seconds);
  },
  /** One write to the event log of `size` events that took `seconds` until its commit. */
  observeAppendBatch(size: number, seconds: number): void {
    m.eventsAppended.inc(size);
    m.appendBatchSize.observe(size);
    m.appendBatchSeconds.observe(seconds);
  },
  /** Events stored by a transaction of their own (a user's message with its run), not by a batch. */
  eventsStored(count: number): void {
    m.eventsAppended.inc(count);
  },
  eventsPublished(ok: boolean, count: number): void {
    m.eventsPublished.labels(ok ? 'ok' : 'failed').inc(count);
  },
  /** One database statement of `kind` (see statementKind) that took `seconds`, round trip included. */
  observeStatement(kind: StatementKind, seconds: number): void {
    m.statementSeconds.labels(kind).observe(seconds);
  },
  /** A failed statement: `sqlState` is the Postgres error code, absent when the server was not reached. */
  dbError(sqlState: string | undefined): void {
    m.dbErrors.labels(sqlState && /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState.slice(0, 2) : 'connection').inc();
  },
  /** A client's read that a replica may answer, and the server that did (db/read-routing.ts). */
  clientRead(read: 'replay' | 'history' | 'poll' | 'list' | 'search', server: 'replica' | 'primary'): void {
    m.clientReads.labels(read, server).inc();
  },
  /** An error on a Redis connection, by what the connection is for (redis/connections.ts roles). */
  redisError(role: 'publish' | 'subscribe' | 'queue' | 'queue-blocking' | 'commands' | 'limits'): void {
    m.redisErrors.labels(REDIS_CLIENTS[role]).inc();
  },
  backgroundTask(task: BackgroundTask, ok: boolean): void {
    m.backgroundTasks.labels(task, ok ? 'ok' : 'failed').inc();
  },
};
