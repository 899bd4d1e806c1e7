/**
 * The benchmark's ceiling: the full raw turn. The same work as a server turn, done with the bare
 * libraries and no protocol (loadtest/bench/raw-gateway.ts, raw-worker.ts), as separate processes
 * on the same Postgres and Redis, against the same model simulator, driven by the same client
 * driver with the same sockets and closed-loop pattern, measured the same way from /proc. Its own
 * tables (raw_*) and Redis prefix, made fresh for each run and removed after it.
 *
 * Run twice per scenario: the worker reading the thread's messages for the prompt, and not (the
 * prompt is the turn's message alone), so the report can say what the history read costs.
 */
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { onCleanup } from './cleanup.js';
import { drive, scenarioReport, settleTransactions } from './drive.js';
import type { Meter } from './measure.js';
import type { DriverConfig } from './messages.js';
import { nodeFlags, startRawPart, type Proc } from './processes.js';
import type { ScenarioReport } from './report.js';
import type { Services } from './services.js';

const SCHEMA = [
  'create table raw_threads (id text primary key, last_seq integer not null default 0, created_at timestamptz not null default now())',
  `create table raw_runs (id text primary key, thread_id text not null, status text not null, user_message_id text not null,
    assistant_message_id text, usage jsonb, created_at timestamptz not null default clock_timestamp(), finished_at timestamptz)`,
  // The search vector as the server's messages table has it (migration 0002): generated, stored, GIN-indexed.
  `create table raw_messages (id text primary key, thread_id text not null, run_id text, role text not null, content text not null,
    created_at timestamptz not null default clock_timestamp(),
    search_tsv tsvector generated always as (to_tsvector('simple', content)) stored)`,
  'create index raw_messages_thread_idx on raw_messages (thread_id, created_at)',
  'create index raw_messages_search_idx on raw_messages using gin (search_tsv)',
  `create table raw_events (thread_id text not null, seq integer not null, run_id text, type text not null, payload jsonb not null,
    created_at timestamptz not null default clock_timestamp(), primary key (thread_id, seq))`,
];
const DROP = 'drop table if exists raw_events, raw_messages, raw_runs, raw_threads';

/** One line for the report: what the raw turn did. */
export const RAW_TURN_WORK =
  'gateway (uWS): parse, user message with its search vector + queued run in 1 statement, 1 BullMQ job, ack; ' +
  'worker: [read the thread\'s messages,] 1 streamed fetch to the simulator, SSE parsed, E events + assistant message + run completed in 1 statement, E publishes pipelined; ' +
  'gateway relays each to the sockets';

async function sql(databaseUrl: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    for (let cursor = '0'; ; ) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      if ((cursor = next) === '0') break;
    }
  } finally {
    redis.disconnect();
  }
}

export interface RawTurnSetup {
  root: string;
  services: Services;
  meter: Meter;
  /** The running simulator (the server's run used it; so does the raw turn) and its base URL. */
  sim: Proc;
  simUrl: string;
  /** The driver's configuration of the server's run: clients, turns, words, followers, deadline. */
  driver: DriverConfig;
  /** The server's events per turn in the same run. */
  eventsPerTurn: number;
  /** Turns at once in the worker: the server's worker slots in all. */
  concurrency: number;
  /** At least this many turns (whole rounds of the server's turns per thread), unless 30 s pass first. */
  minTurns: number;
  readHistory: boolean;
  topology: string;
  /** A folder: both parts write a V8 CPU profile there when they stop, as the server's processes do. */
  cpuProf?: string;
}

let cleanupRegistered = false;

/** One run of the raw turn; its report has the same fields as the server's. */
export async function runRawTurn(setup: RawTurnSetup): Promise<ScenarioReport> {
  const { services, driver } = setup;
  const prefix = `${services.redisPrefix}raw-${setup.readHistory ? 'h' : 'n'}:`;
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    onCleanup('raw turn tables', () => sql(services.databaseUrl, [DROP]));
  }
  await sql(services.databaseUrl, [DROP, ...SCHEMA]);
  const common = { RAW_DATABASE_URL: services.databaseUrl, RAW_REDIS_URL: services.redisUrl, RAW_PREFIX: prefix };
  const parts: Proc[] = [];
  const flags = (role: 'gateway' | 'worker') => [
    ...nodeFlags(setup.root, role),
    // A folder per part and Node's own file names (they carry the thread id): the raw parts run
    // under tsx, whose loader thread writes a profile of its own that a fixed name would let
    // overwrite the main thread's.
    ...(setup.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(setup.cpuProf, `raw-${role}-${setup.readHistory ? 'history' : 'no-history'}`)}`] : []),
  ];
  try {
    // Started one after the other: the gateway's queue is ready before the worker asks it for jobs.
    parts.push(await startRawPart('raw-gateway', 'loadtest/bench/raw-gateway.ts', { root: setup.root, env: common, flags: flags('gateway'), fds: 1_048_576 }));
    parts.push(await startRawPart('raw-worker', 'loadtest/bench/raw-worker.ts', {
      root: setup.root,
      env: {
        ...common,
        RAW_MODEL_URL: setup.simUrl,
        RAW_CONCURRENCY: String(setup.concurrency),
        RAW_READ_HISTORY: setup.readHistory ? '1' : '0',
        RAW_EVENTS_PER_TURN: String(setup.eventsPerTurn),
      },
      flags: flags('worker'),
      fds: 65_536,
    }));
    // Whole rounds of the server's turns (its rounds already among them), each round on new threads
    // as the server's were, so every thread's history grows as the server's did.
    const perThread = driver.turnsPerThread ?? driver.turns;
    const rounds = Math.max(1, Math.ceil(setup.minTurns / (driver.clients * driver.turns)));
    const run = await drive(setup.root, setup.meter, [...parts, setup.sim], {
      ...driver,
      gateways: [`ws://127.0.0.1:${parts[0]!.port}/`],
      threadsTable: 'raw_threads',
      turns: driver.turns * rounds,
      turnsPerThread: perThread,
      windowLimitS: 30,
      startedAt: Date.now(),
    });
    await Promise.all(parts.map((p) => p.stop()));
    await settleTransactions(setup.meter, run);
    return scenarioReport(`raw turn, ${setup.readHistory ? 'reading the history' : 'without reading the history'}`, setup.topology, run, {
      read_history: setup.readHistory,
      clients: driver.clients,
      followers: driver.followers,
      turns_per_thread: perThread,
      events_per_turn_asked: setup.eventsPerTurn,
      worker_concurrency: setup.concurrency,
    });
  } finally {
    await Promise.all(parts.map((p) => p.stop()));
    await deleteKeys(services.redisUrl, prefix);
    await sql(services.databaseUrl, [DROP]);
  }
}
