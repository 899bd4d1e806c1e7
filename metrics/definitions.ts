/**
 * Every metric of the project, in one place, with its HELP text. Label sets are bounded by
 * construction: frame and event types, error and close codes, outcomes and statement kinds come
 * from closed lists; never a user, workspace, thread, run or connection id (one series per id
 * would grow without end and leak who is talking to whom).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { PREFIX, registry } from './registry.js';

const registers = [registry];

/** Seconds, from 1 ms to 30 s: statement times, lags and turns all fall in this range. */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Sizes (events per batch, events per replay): powers of two up to 4096. */
const SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

// ---- gateway: sockets and frames ----------------------------------------------------------

export const connectionsOpen = new Gauge({
  name: `${PREFIX}connections_open`,
  help: 'WebSocket connections open on this gateway.',
  registers,
});

export const connectionsOpened = new Counter({
  name: `${PREFIX}connections_opened_total`,
  help: 'WebSocket connections opened (past the authenticated upgrade).',
  registers,
});

export const connectionsClosed = new Counter({
  name: `${PREFIX}connections_closed_total`,
  help: 'WebSocket connections closed, by close code (codes outside the protocol\'s list count as "other").',
  labelNames: ['code'] as const,
  registers,
});

export const framesIn = new Counter({
  name: `${PREFIX}frames_in_total`,
  help: 'Frames received from clients (valid or not).',
  registers,
});

export const frameBytesIn = new Counter({
  name: `${PREFIX}frame_bytes_in_total`,
  help: 'Bytes of the frames received from clients.',
  registers,
});

export const framesOut = new Counter({
  name: `${PREFIX}frames_out_total`,
  help: 'Frames sent to clients: direct sends, replays and one per subscriber of each topic publish.',
  registers,
});

export const frameBytesOut = new Counter({
  name: `${PREFIX}frame_bytes_out_total`,
  help: 'Bytes of the frames sent to clients (UTF-8, before WebSocket framing).',
  registers,
});

export const errorsSent = new Counter({
  name: `${PREFIX}errors_sent_total`,
  help: 'Error frames sent to clients, by error code.',
  labelNames: ['code'] as const,
  registers,
});

export const backpressureCloses = new Counter({
  name: `${PREFIX}backpressure_closes_total`,
  help: 'Sockets closed with 1013 because their send buffer passed MAX_BUFFERED_BYTES (slow consumers).',
  registers,
});

export const replaySize = new Histogram({
  name: `${PREFIX}replay_events`,
  help: 'Events replayed from the log to one socket when it subscribed (thread.subscribe with after_seq).',
  buckets: [0, ...SIZES],
  registers,
});

export const fanoutLag = new Histogram({
  name: `${PREFIX}fanout_lag_seconds`,
  help: 'From an event\'s timestamp (set by Postgres when it was appended) to its forwarding to this gateway\'s sockets. Includes clock skew between the database and this host.',
  buckets: SECONDS,
  registers,
});

// ---- worker: turns -------------------------------------------------------------------------

export const turns = new Counter({
  name: `${PREFIX}turns_total`,
  help: 'Turn attempts that ended in this worker, by outcome: completed, cancelled, failed (the run ended with that status); released (handed to another worker on shutdown); fenced (taken over by another attempt); error (the attempt threw and is retried).',
  labelNames: ['outcome'] as const,
  registers,
});

export const turnDuration = new Histogram({
  name: `${PREFIX}turn_duration_seconds`,
  help: 'From the claim of a run to the end of its attempt in this worker, by outcome.',
  labelNames: ['outcome'] as const,
  buckets: SECONDS,
  registers,
});

export const queueWait = new Histogram({
  name: `${PREFIX}queue_wait_seconds`,
  help: 'From a turn job\'s creation to its claim by a worker (includes waiting for a free worker slot).',
  buckets: SECONDS,
  registers,
});

export const timeToFirstDelta = new Histogram({
  name: `${PREFIX}time_to_first_delta_seconds`,
  help: 'From the claim of a run to the first streamed text from the model (prompt building plus the model\'s first token).',
  buckets: SECONDS,
  registers,
});

// ---- the event log and the broker ----------------------------------------------------------

export const eventsAppended = new Counter({
  name: `${PREFIX}events_appended_total`,
  help: 'Thread events appended to the log by this process.',
  registers,
});

export const appendBatchSize = new Histogram({
  name: `${PREFIX}append_batch_events`,
  help: 'Events written by one append to the log (one statement or transaction).',
  buckets: SIZES,
  registers,
});

export const appendBatchSeconds = new Histogram({
  name: `${PREFIX}append_batch_seconds`,
  help: 'Time to write one append batch to the log, until its commit.',
  buckets: SECONDS,
  registers,
});

export const eventsPublished = new Counter({
  name: `${PREFIX}events_published_total`,
  help: 'Stored thread events published on the broker, by result (ok, failed: stored but not published; gateways fill the gap from the log).',
  labelNames: ['result'] as const,
  registers,
});

// ---- backing services ----------------------------------------------------------------------

export const statementSeconds = new Histogram({
  name: `${PREFIX}db_statement_seconds`,
  help: 'Database statement time seen by this process (round trip included), by kind: select, insert, update, delete, with (a CTE), transaction (begin/commit/rollback), other.',
  labelNames: ['kind'] as const,
  buckets: SECONDS,
  registers,
});

export const dbErrors = new Counter({
  name: `${PREFIX}db_errors_total`,
  help: 'Failed database statements, by SQLSTATE class (first two characters; "connection" when the server could not be reached).',
  labelNames: ['class'] as const,
  registers,
});

export const clientReads = new Counter({
  name: `${PREFIX}db_client_reads_total`,
  help: 'Clients\' reads a read replica may answer (replay, history, poll, list, search), by the server that answered: replica, or primary (no replica configured, the replica behind what the read must see, or failing).',
  labelNames: ['read', 'server'] as const,
  registers,
});

export const redisErrors = new Counter({
  name: `${PREFIX}redis_errors_total`,
  help: 'Errors reported by Redis connections, by client: broker (pub/sub), queue (BullMQ), tickets, limits (rate limits and connection slots).',
  labelNames: ['client'] as const,
  registers,
});

// ---- a worker's background tasks -----------------------------------------------------------

export const backgroundTasks = new Counter({
  name: `${PREFIX}background_tasks_total`,
  help: 'Runs of a worker\'s background tasks, by task (heartbeat: the held runs\' heartbeat; sweep: stranded and stale runs; prune: old bookkeeping rows) and result (ok, failed). A heartbeat that keeps failing gets the worker\'s runs taken over by others.',
  labelNames: ['task', 'result'] as const,
  registers,
});
