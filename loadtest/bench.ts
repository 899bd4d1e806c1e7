/**
 * The benchmark: the server as its own processes on Postgres and Redis, the LLM simulator as
 * another, the clients as another (loadtest/bench/driver.ts); this process only starts them,
 * reads CPU and memory from /proc and counters from Postgres and /metrics at the edges of each
 * measured window, runs the ceiling (the full raw turn, loadtest/bench/raw-turn.ts) on the same
 * services, and reports (a table on stdout, a JSON file). Bounded in count and time, loopback
 * only; everything it starts is removed at the end, also on failure or Ctrl-C.
 *
 *   npm run bench -- [--scenario closed|streaming|idle|storm|embedded|soak|all] [--topology all|split|2x2]
 *     [--clients N] [--turns N] [--words N] [--token-delay-ms N] [--followers M]
 *     [--idle-sockets K] [--idle-step N] [--idle-users N] [--idle-settle-s S] [--storm-followers N] [--storm-threads N]
 *     [--soak-minutes N] [--worker-concurrency N] [--log-level warn] [--raw-min-turns N] [--rounds N]
 *     [--database-url URL] [--redis-url URL] [--out FILE] [--deadline-s N] [--no-ceiling] [--cpu-prof DIR]
 *     [--services single|cluster|both] [--turn-queue-partitions N]
 *
 * `--services cluster` runs the server on a 3-master Redis Cluster with replicas and a Postgres
 * read replica (loadtest/bench/cluster-services.ts); `both` runs each scenario on the single node
 * first, then on the cluster, and prints the two side by side (loadtest/bench/compare.ts).
 */
import { randomBytes } from 'node:crypto';
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer } from '../scripts/build-server.mjs';
import { cleanupAll, installSignalHandlers, interrupted, onCleanup } from './bench/cleanup.js';
import { drive, scenarioReport, settleTransactions } from './bench/drive.js';
import { embeddedAtRest } from './bench/embedded-rest.js';
import { Meter } from './bench/measure.js';
import type { DriverConfig } from './bench/messages.js';
import { nodeFlags, startLlmSim, startServer, TOPOLOGIES, type Proc, type Topology } from './bench/processes.js';
import { rssOf, sampleGroup } from './bench/procstat.js';
import { RAW_TURN_WORK, runRawTurn } from './bench/raw-turn.js';
import { compareFanout, compareRaw, printScenario, slope, type ScenarioReport } from './bench/report.js';
import { runRawPublish } from './bench/raw-publish-run.js';
import { startServices, type Services } from './bench/services.js';
import { startClusterServices, type ClusterServices } from './bench/cluster-services.js';
import { compareServices } from './bench/compare.js';
import { scrape, total } from '../test/support/metrics-scrape.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SCENARIOS = ['closed', 'streaming', 'idle', 'storm', 'embedded', 'soak'] as const;
type Scenario = (typeof SCENARIOS)[number];

function options() {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'closed' },
      topology: { type: 'string', default: 'split' },
      clients: { type: 'string' },
      turns: { type: 'string' },
      words: { type: 'string' },
      'token-delay-ms': { type: 'string' },
      followers: { type: 'string' },
      'idle-sockets': { type: 'string', default: '18000' },
      'idle-step': { type: 'string', default: '3000' },
      'idle-users': { type: 'string' },
      'idle-settle-s': { type: 'string', default: '15' },
      'storm-followers': { type: 'string', default: '1000' },
      'storm-threads': { type: 'string', default: '20' },
      'soak-minutes': { type: 'string', default: '10' },
      'worker-concurrency': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      out: { type: 'string' },
      'deadline-s': { type: 'string', default: '900' },
      'no-ceiling': { type: 'boolean', default: false },
      'raw-min-turns': { type: 'string', default: '2000' },
      rounds: { type: 'string' },
      'cpu-prof': { type: 'string' },
      services: { type: 'string', default: 'single' },
      'turn-queue-partitions': { type: 'string' },
    },
  });
  const int = (name: keyof typeof values, fallback: number, min: number, max: number) => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
    return value;
  };
  const scenarios = values.scenario === 'all' ? [...SCENARIOS.filter((s) => s !== 'soak')] : [values.scenario as Scenario];
  if (!scenarios.every((s) => SCENARIOS.includes(s))) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')} or all`);
  if (!(values.topology! in TOPOLOGIES)) throw new Error('--topology must be all, split or 2x2');
  if (!['single', 'cluster', 'both'].includes(values.services!)) throw new Error('--services must be single, cluster or both');
  if (values.services !== 'single' && (values['database-url'] || values['redis-url'])) throw new Error(`--services ${values.services} starts its own Redis Cluster and a replica of the private Postgres: leave out --database-url and --redis-url`);
  const streaming = (s: Scenario) => s === 'streaming';
  return {
    scenarios,
    topology: values.topology as Topology,
    turnsFor: (s: Scenario) => ({
      clients: int('clients', streaming(s) ? 200 : s === 'soak' ? 50 : 100, 1, 20_000),
      turns: int('turns', streaming(s) ? 1 : 5, 1, 10_000),
      words: int('words', streaming(s) ? 50 : 20, 1, 10_000),
      delayMs: int('token-delay-ms', streaming(s) ? 20 : 0, 0, 60_000),
      followers: int('followers', streaming(s) ? 9 : 0, 0, 1_000),
    }),
    // One user (and token) per socket unless --idle-users says how many to share.
    idle: { sockets: int('idle-sockets', 18_000, 1, 1_000_000), step: int('idle-step', 3_000, 1, 1_000_000), users: int('idle-users', 0, 1, 1_000_000) },
    /** Seconds the gateway is left idle at each step before its RSS is read again (V8's memory reducer runs after about 8 s). */
    idleSettleS: int('idle-settle-s', 15, 0, 600),
    // 300 words at 20 ms: a 6 s answer, so the drop lands mid-stream even after a slow connect phase.
    storm: { followers: int('storm-followers', 1_000, 1, 100_000), threads: int('storm-threads', 20, 1, 10_000), words: 300, delayMs: 20 },
    soakMinutes: int('soak-minutes', 10, 1, 24 * 60),
    workerConcurrency: values['worker-concurrency'] === undefined ? undefined : int('worker-concurrency', 8, 1, 1_000),
    logLevel: values['log-level']!,
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'],
    out: values.out,
    deadlineS: int('deadline-s', 900, 10, 86_400),
    ceiling: !values['no-ceiling'],
    /** The raw turn runs whole rounds of the scenario's turns until at least this many (or 30 s). */
    rawMinTurns: int('raw-min-turns', 2_000, 1, 1_000_000),
    /**
     * How many times the closed and streaming scenarios run their turns per thread, each time on
     * new threads: by default as many rounds as the raw turn runs (at least --raw-min-turns turns),
     * so the server and its ceiling are measured over the same turns. 1 is a single burst from a
     * cold start: every client's first turn at once, on processes that have run no turn yet.
     */
    rounds: values.rounds === undefined ? undefined : int('rounds', 1, 1, 10_000),
    /** A folder: every server process writes a V8 CPU profile there when it stops (node --cpu-prof). */
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
    /** The services each scenario runs on, in this order. */
    modes: (values.services === 'both' ? ['single', 'cluster'] : [values.services]) as Mode[],
    /** TURN_QUEUE_PARTITIONS on the cluster (6 spreads evenly over 3 masters). */
    partitions: int('turn-queue-partitions', 6, 1, 1024),
  };
}
type Options = ReturnType<typeof options>;
type Mode = 'single' | 'cluster';

/** What a scenario runs on: the single node (and the primary alone), or the cluster and the replica. */
interface Backing {
  mode: Mode;
  services: Services;
  cluster?: ClusterServices;
}

function machine(services: Services): Record<string, string | number> {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.platform()} ${os.release()} ${os.arch()}`,
    load_avg_1m_at_start: Math.round(os.loadavg()[0]! * 100) / 100,
    commit,
    services: services.private ? 'private Postgres cluster and redis-server (started by the benchmark)' : 'existing servers (--database-url/--redis-url)',
    ...services.facts,
  };
}

interface Stack {
  server: Proc[];
  sim: Proc;
  /** The simulator's base URL (the raw turn asks it too). */
  simUrl: string;
  gateways: string[];
}

async function startStack(opts: Options, backing: Backing, buildDir: string, secret: string, words: number, delayMs: number, extraEnv: Record<string, string> = {}): Promise<Stack> {
  const { services, cluster } = backing;
  const { proc: sim, baseUrl } = await startLlmSim({ root: ROOT, buildDir, tokenDelayMs: delayMs, words });
  const redisEnv: Record<string, string> = cluster
    ? { REDIS_CLUSTER_NODES: cluster.nodesSetting, TURN_QUEUE_PARTITIONS: String(cluster.partitions), DATABASE_READ_URL: cluster.replicaUrl }
    : { REDIS_URL: services.redisUrl };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    DATABASE_URL: services.databaseUrl,
    ...redisEnv,
    REDIS_PREFIX: services.redisPrefix,
    JWT_SECRET: secret,
    OPENAI_BASE_URL: baseUrl,
    OPENAI_API_KEY: 'bench',
    OPENAI_MODEL: 'sim-1',
    LOG_LEVEL: opts.logLevel,
    // Per-user budgets off (a scenario opens many sockets per user); the per-connection frame limit stays on.
    RATE_LIMIT_MESSAGES_PER_MIN: '0',
    RATE_LIMIT_RUNS_PER_USER: '0',
    RATE_LIMIT_CONNECTIONS_PER_USER: '0',
    // A scenario's sockets share a few users (a storm's 1,000 followers, say): the per-user shares
    // are off too; the per-connection limits (frames per second, frames waiting) stay on.
    RATE_LIMIT_IN_FLIGHT_PER_USER: '0',
    RATE_LIMIT_THREADS_PER_MIN: '0',
    RATE_LIMIT_REST_PER_SEC: '0',
    ...(opts.workerConcurrency ? { WORKER_CONCURRENCY: String(opts.workerConcurrency) } : {}),
    ...extraEnv,
  };
  const server = await startServer(opts.topology, { root: ROOT, buildDir, env, fds: 1_048_576, cpuProf: opts.cpuProf });
  const gateways = server.filter((p) => p.port).map((p) => `ws://127.0.0.1:${p.port}/v1/ws`);
  return { server, sim, simUrl: baseUrl, gateways };
}

async function stopStack(stack: Stack): Promise<void> {
  await Promise.all(stack.server.map((p) => p.stop()));
  await stack.sim.stop();
}

function driverConfig(opts: Options, scenario: DriverConfig['scenario'], gateways: string[], secret: string, services: Services, turns: ReturnType<Options['turnsFor']>, startedAt: number): DriverConfig {
  return {
    scenario, gateways, secret, databaseUrl: services.databaseUrl, threadsTable: 'threads', ...turns,
    idle: opts.idle, storm: opts.storm, paced: { ratePerS: 1, durationS: 60 },
    startedAt, deadlineS: opts.deadlineS,
  };
}

/** Both runs of the raw turn beside the server's run that `report` measured, on its simulator. */
async function rawTurn(opts: Options, services: Services, meter: Meter, stack: Stack, config: DriverConfig, report: ScenarioReport, concurrency: number): Promise<ScenarioReport['raw_turn']> {
  const common = { root: ROOT, services, meter, sim: stack.sim, simUrl: stack.simUrl, driver: config, eventsPerTurn: report.events_per_turn, concurrency, minTurns: opts.rawMinTurns, topology: 'split', cpuProf: opts.cpuProf };
  const withHistory = await runRawTurn({ ...common, readHistory: true });
  const withoutHistory = await runRawTurn({ ...common, readHistory: false });
  return compareRaw(report, withHistory, withoutHistory, RAW_TURN_WORK);
}

/**
 * WORKER_CONCURRENCY for `turns` to run at once over `workers` processes. One queue (the single
 * node) hands jobs to whichever worker has a free slot, so an even share is enough. With several
 * queues (TURN_QUEUE_PARTITIONS on the cluster) a worker can take jobs from every queue beyond its
 * slots and hold them while another worker's slots are free: each worker gets room for all.
 */
function allAtOnce(turns: number, workers: number, oneQueue: boolean): number {
  return oneQueue ? Math.ceil(turns / workers) : turns;
}

async function runScenario(scenario: Scenario, opts: Options, backing: Backing, meter: Meter, buildDir: string): Promise<ScenarioReport> {
  const { services } = backing;
  const single = backing.mode === 'single';
  meter.use(backing.cluster ? { redisNodes: backing.cluster.redisNodes, replicaRoot: backing.cluster.replicaRoot } : { redisNodes: services.redisNodes });
  const secret = randomBytes(32).toString('hex');
  const startedAt = Date.now();
  const turns = opts.turnsFor(scenario);
  if (scenario === 'closed' || scenario === 'streaming') {
    // Streaming measures delivery, not queueing: unless told otherwise, every turn can run at once.
    const workers = TOPOLOGIES[opts.topology].filter((role) => role !== 'gateway').length;
    const concurrency = opts.workerConcurrency ?? (scenario === 'streaming' ? allAtOnce(turns.clients, workers, single) : undefined);
    const stack = await startStack(opts, backing, buildDir, secret, turns.words, turns.delayMs, concurrency ? { WORKER_CONCURRENCY: String(concurrency) } : {});
    const rounds = opts.rounds ?? Math.max(1, Math.ceil(opts.rawMinTurns / (turns.clients * turns.turns)));
    // Each round on new threads, so every thread's history grows to the scenario's turns and no further.
    const config = { ...driverConfig(opts, 'turns', stack.gateways, secret, services, turns, startedAt), turns: turns.turns * rounds, turnsPerThread: turns.turns };
    const run = await drive(ROOT, meter, [...stack.server, stack.sim], config);
    // The server stops before the raw turn runs; the simulator serves both.
    await Promise.all(stack.server.map((p) => p.stop()));
    await settleTransactions(meter, run);
    const report = scenarioReport(scenario, opts.topology, run, { ...turns, rounds, sockets: run.result.sockets, worker_concurrency: concurrency ?? 'default (8)' });
    // The floors (raw publish, raw turn) run on the single node only: they are the same work on any Redis.
    if (scenario === 'streaming' && report.turns > 0 && single) {
      // The fan-out's floor: the frames the sockets got, published by bare uWS to as many sockets.
      const raw = await runRawPublish({ root: ROOT, databaseUrl: services.databaseUrl, socketsPerThread: 1 + turns.followers, deadlineMs: 120_000 });
      report.fanout = compareFanout(report, run.result.eventsReceived, raw);
    }
    if (opts.ceiling && report.turns > 0 && single) {
      report.raw_turn = await rawTurn(opts, services, meter, stack, config, report, (concurrency ?? 8) * workers);
      // A raw turn that lost or doubled an event measured something else: the run does not pass.
      report.passed &&= report.raw_turn!.with_history.passed && report.raw_turn!.without_history.passed;
    }
    await stack.sim.stop();
    return report;
  }
  if (scenario === 'idle') {
    const stack = await startStack(opts, backing, buildDir, secret, 5, 0);
    const gateways = stack.server.filter((p) => p.port);
    const steps: Array<{ sockets: number; gateway_rss_mib: number; at_once_mib: number }> = [];
    const rss = () => rssOf(sampleGroup(gateways.map((g) => g.pid))) / 2 ** 20;
    const run = await drive(ROOT, meter, [...stack.server, stack.sim], driverConfig(opts, 'idle', stack.gateways, secret, services, turns, startedAt), async (sockets) => {
      // Read at once, the heap still holds the handshakes' garbage; read again once the sockets
      // have idled (the driver waits): what a gateway holding them at rest keeps.
      const atOnce = rss();
      await sleep(opts.idleSettleS * 1000);
      steps.push({ sockets, gateway_rss_mib: rss(), at_once_mib: atOnce });
    });
    await stopStack(stack);
    await settleTransactions(meter, run);
    // The slope from 3,000 sockets on (below that, pools and buffers that grow once still show), unless the run has fewer steps there.
    const from = steps.filter((s) => s.sockets >= 3_000).length >= 2 ? 3_000 : 1;
    const fitted = steps.filter((s) => s.sockets >= from);
    const perSocket = fitted.length >= 2 ? slope(fitted.map((s) => [s.sockets, s.gateway_rss_mib * 2 ** 20])) : NaN;
    const perSocketAtOnce = fitted.length >= 2 ? slope(fitted.map((s) => [s.sockets, s.at_once_mib * 2 ** 20])) : NaN;
    const { users } = opts.idle;
    const report = scenarioReport(scenario, opts.topology, run, { ...opts.idle, users: users || 'one per socket' });
    report.idle = {
      users: users
        ? `shared: ${users} users over ${opts.idle.sockets} sockets (per-user and per-token state counted once per ${Math.round(opts.idle.sockets / users)} sockets)`
        : `one per socket: ${opts.idle.sockets} distinct users, each with its own token`,
      steps,
      settle_s: opts.idleSettleS,
      slope_from_sockets: fitted[0]?.sockets ?? NaN,
      kib_per_socket: perSocket / 1024,
      kib_per_socket_at_once: perSocketAtOnce / 1024,
      sockets_per_gb: 1e9 / perSocket,
      sockets_per_gib: 2 ** 30 / perSocket,
      base_rss_mib: steps[0]?.gateway_rss_mib ?? NaN,
    };
    return report;
  }
  if (scenario === 'embedded') {
    // No Postgres, no Redis: PGlite under DATA_DIR, started as `npm start` starts it.
    const rest = await embeddedAtRest({
      args: [...nodeFlags(ROOT, 'start'), path.join(buildDir, 'server.js')],
      cwd: ROOT,
      env: { HOST: '127.0.0.1', NODE_ENV: 'production', LOG_LEVEL: opts.logLevel, JWT_SECRET: secret },
    });
    return {
      scenario, topology: 'embedded (one process)', options: {}, window_s: 0, turns: 0, turns_per_s: 0, events: 0, events_per_s: 0,
      events_per_turn: 0, mean_event_chars: 0, sockets: 0, processes: [], server_cpu_ms_per_turn: null, statements_per_turn: null,
      round_trips_per_turn: null, top_statements: [], most_sent_statements: [], transaction_control_per_turn: null,
      transactions_per_turn: null, pool_statements_per_turn: null, latency_ms: {},
      checks: [{ name: 'the embedded server answered /ready and stayed up at rest, first start and restart', ok: 2, total: 2 }],
      passed: true, problems: [], embedded_rest: rest,
    };
  }
  if (scenario === 'storm') {
    // Every thread streams at once, so every follower is dropped mid-stream.
    const workers = TOPOLOGIES[opts.topology].filter((role) => role !== 'gateway').length;
    const concurrency = opts.workerConcurrency ?? allAtOnce(opts.storm.threads, workers, single);
    const stack = await startStack(opts, backing, buildDir, secret, opts.storm.words, opts.storm.delayMs, { WORKER_CONCURRENCY: String(concurrency) });
    const run = await drive(ROOT, meter, [...stack.server, stack.sim], driverConfig(opts, 'storm', stack.gateways, secret, services, turns, startedAt));
    await stopStack(stack);
    await settleTransactions(meter, run);
    const report = scenarioReport(scenario, opts.topology, run, { ...opts.storm, worker_concurrency: concurrency });
    const storm = run.result.storm!;
    report.storm = { dropped: storm.dropped, mid_stream: storm.midStream, all_caught_up_s: storm.allCaughtUpS, all_complete_s: storm.allCompleteS };
    return report;
  }
  // soak: the closed-loop rate first, then half of it for soak-minutes, server RSS sampled every 10 s.
  const stack = await startStack(opts, backing, buildDir, secret, turns.words, turns.delayMs);
  const probe = await drive(ROOT, meter, [...stack.server, stack.sim], driverConfig(opts, 'turns', stack.gateways, secret, services, { ...turns, turns: 3 }, startedAt));
  const rate = probe.result.turns / probe.result.windowS / 2;
  const samples: Array<{ t_s: number; mib: number }> = [];
  // Per process, RSS beside the V8 heap in use (from its /metrics): a heap that climbs is a leak,
  // RSS that climbs over a flat heap is the allocator or V8 keeping pages.
  const perProcess: Array<{ t_s: number; process: string; rss_mib: number; heap_used_mib: number }> = [];
  const t0 = performance.now();
  const timer = setInterval(() => {
    const t = Math.round((performance.now() - t0) / 1000);
    samples.push({ t_s: t, mib: rssOf(sampleGroup(stack.server.map((p) => p.pid))) / 2 ** 20 });
    for (const proc of stack.server) {
      void scrape(proc.metricsUrl!).then((metrics) => perProcess.push({
        t_s: t,
        process: proc.name,
        rss_mib: rssOf(sampleGroup([proc.pid])) / 2 ** 20,
        heap_used_mib: total(metrics, 'convo_nodejs_heap_size_used_bytes') / 2 ** 20,
      }), () => {});
    }
  }, 10_000);
  const config = driverConfig(opts, 'paced', stack.gateways, secret, services, turns, Date.now());
  config.paced = { ratePerS: rate, durationS: opts.soakMinutes * 60 };
  config.deadlineS = opts.soakMinutes * 60 + 300;
  const run = await drive(ROOT, meter, [...stack.server, stack.sim], config).finally(() => clearInterval(timer));
  await stopStack(stack);
  await settleTransactions(meter, run);
  const report = scenarioReport(scenario, opts.topology, run, { ...turns, minutes: opts.soakMinutes });
  // Growth: the last minute against the second (the first minute is warm-up: pools, JIT, caches).
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const early = samples.filter((s) => s.t_s > 60 && s.t_s <= 120).map((s) => s.mib);
  const late = samples.slice(-6).map((s) => s.mib);
  const growth = early.length && late.length ? ((mean(late) - mean(early)) / mean(early)) * 100 : NaN;
  report.soak = { minutes: opts.soakMinutes, rate_per_s: rate, rss_mib: samples, per_process: perProcess, growth_pct: growth, passed: growth <= 5 && report.passed };
  report.passed = report.soak.passed;
  return report;
}

async function main(): Promise<number> {
  const opts = options();
  installSignalHandlers();
  const started = Date.now();
  const overall = setTimeout(() => {
    process.stderr.write(`bench: the deadline of ${opts.deadlineS} s passed; stopping\n`);
    void cleanupAll().finally(() => process.exit(1));
  }, (opts.deadlineS + (opts.scenarios.includes('soak') ? opts.soakMinutes * 60 + 600 : 120)) * 1000);
  overall.unref();
  const buildDir = path.join(ROOT, 'bench-results', `.build-${process.pid}`);
  onCleanup('build', async () => rmSync(buildDir, { recursive: true, force: true }), () => rmSync(buildDir, { recursive: true, force: true }));
  await buildServer({ outdir: path.relative(ROOT, buildDir), quiet: true });
  const services = await startServices({ databaseUrl: opts.databaseUrl, redisUrl: opts.redisUrl });
  const cluster = opts.modes.includes('cluster') ? await startClusterServices(services, opts.partitions) : undefined;
  const meter = await Meter.open(services);
  onCleanup('meter', () => meter.close());
  const facts = { ...machine(services), ...cluster?.facts };
  const backings: Record<Mode, Backing> = { single: { mode: 'single', services }, cluster: { mode: 'cluster', services, cluster } };
  console.log(`bench: ${opts.scenarios.join(', ')} on topology ${opts.topology} (${TOPOLOGIES[opts.topology].join(' + ')})`);
  console.log(`machine: ${facts.cpus} x ${facts.cpu_model}, ${facts.memory_gib} GiB, node ${facts.node}, ${facts.kernel}, load avg ${facts.load_avg_1m_at_start}, commit ${facts.commit}`);
  console.log(`services: ${facts.services}; postgres ${facts['postgres server_version']} (fsync ${facts['postgres fsync']}, synchronous_commit ${facts['postgres synchronous_commit']}, shared_buffers ${facts['postgres shared_buffers']}), redis ${facts['redis version']}`);
  if (cluster) console.log(`cluster mode: redis cluster ${cluster.facts['redis cluster']}, nodes ${cluster.nodesSetting}; postgres replica: ${cluster.facts['postgres replica']}`);
  const reports: ScenarioReport[] = [];
  for (const scenario of opts.scenarios) {
    const pair: ScenarioReport[] = [];
    // The embedded server has no Redis or Postgres to scale: it runs once.
    for (const mode of scenario === 'embedded' ? ['single' as const] : opts.modes) {
      const report = await runScenario(scenario, opts, backings[mode], meter, buildDir);
      report.services = mode;
      reports.push(report);
      pair.push(report);
      console.log(printScenario(report));
    }
    if (pair.length === 2) console.log(compareServices(pair[0]!, pair[1]!));
  }
  const out = opts.out ?? path.join(ROOT, 'bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}-${opts.scenarios.join('+')}-${opts.topology}${opts.modes.includes('cluster') ? `-${opts.modes.join('+')}` : ''}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  const passed = reports.every((r) => r.passed);
  writeFileSync(out, JSON.stringify({ result: passed ? 'pass' : 'fail', machine: facts, topology: opts.topology, services: opts.modes, duration_s: (Date.now() - started) / 1000, scenarios: reports }, null, 2) + '\n');
  console.log(`\nRESULT: ${passed ? 'PASS' : 'FAIL'}; report written to ${out}`);
  return passed ? 0 : 1;
}

main().then(
  async (code) => {
    const failures = await cleanupAll();
    for (const failure of failures) console.error(`cleanup: ${failure}`);
    process.exit(failures.length > 0 ? 1 : code);
  },
  async (error: unknown) => {
    if (interrupted) return; // the signal handler cleans up and exits
    console.error(`bench failed: ${(error as Error)?.stack ?? error}`);
    await cleanupAll();
    process.exit(1);
  },
);
