/**
 * The composition root: assembles one process from its parts (store, bus, event log, LLM, and the
 * gateway and/or the worker), each picked once (app/backends.ts, app/llm.ts, app/dev-auth.ts).
 * `npm start` runs both roles; `npm run gateway` and `npm run worker` run one each. The only
 * module that knows both roles.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/schema.js';
import { DataDirInUseError, openReadReplica, openStore, type Store } from '../db/connect.js';
import { ReadRouting } from '../db/read-routing.js';
import type { StatementCounter } from '../db/statement-counter.js';
import { migrateToLatest } from '../db/migrate.js';
import { pingStore } from '../db/health.repository.js';
import { createBroker, type Broker } from '../broker/index.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { createTurnQueue, type TurnQueue } from '../queue/index.js';
import { metrics, startDefaultMetrics, startMetricsServer } from '../metrics/index.js';
import { ConfigError, type Config } from '../config/config.js';
import { redactUrl } from '../config/env.js';
import { createTokenVerifier, type TokenVerifier } from '../server/auth.js';
import { startGateway, type Gateway } from '../server/gateway.js';
import { uwsProblem } from '../server/uws.js';
import { createTicketStore } from '../server/tickets/index.js';
import { RateLimiter } from '../server/rate-limits/index.js';
import { createDefaultRegistry, type ToolRegistry } from '../workers/tools/registry.js';
import type { TurnWorker } from '../workers/worker.js';
import { failOrphanedRuns } from '../workers/recovery.js';
import { chooseBackends, waitForRedis, type Bus } from './backends.js';
import { devTokensAllowed, resolveSigningSecret, type SigningSecret } from './dev-auth.js';
import { startLlm } from './llm.js';

export interface Roles {
  gateway: boolean;
  worker: boolean;
}

export interface RunningNode {
  /** The node's store (tests read it to compare with what clients received). */
  db: Kysely<Database>;
  /** Statements the node's store (`readStatements`: its read replica) has sent, by kind (benchmarks, metrics). */
  statements: StatementCounter;
  readStatements?: StatementCounter;
  /** The node's event log (every event it writes goes through it) and the broker it publishes on. */
  events: GroupCommitEventLog;
  broker: Broker;
  gateway?: Gateway;
  worker?: TurnWorker;
  /** The port of the worker-only process's `/metrics` endpoint (METRICS_PORT); a gateway serves it on its own port. */
  metricsPort?: number;
  /** The HS256 secret in use (configured or generated), for printing development tokens. */
  jwtSecret?: string;
  devSecretFile?: string;
  /** The gateway serves GET /dev/token (embedded development mode): the demo page signs itself in. */
  devTokens: boolean;
  llmDescription: string;
  modes: Record<string, string>;
  close(): Promise<void>;
}

/** What a caller (tests) may supply instead of the defaults. */
export interface NodeOverrides {
  /**
   * The worker's tools instead of the built-in ones (tests add tools that hang or throw). Only the
   * worker uses it: agents offering such tools are written to the database directly, since the
   * gateway validates agent tool names against the built-in list.
   */
  tools?: ToolRegistry;
  /**
   * The gateway's token verifier instead of the configured one. Tests use it to hand the gateway a
   * principal no real verifier produces (the guard test: a handler that throws must cost only its
   * socket).
   */
  verifyToken?: TokenVerifier;
}

/** What both roles share, built before either starts. */
interface Core {
  config: Readonly<Config>;
  log: Logger;
  bus: Bus;
  db: Kysely<Database>;
  broker: Broker;
  events: GroupCommitEventLog;
  queue: TurnQueue;
  /** Registers a shutdown step (run in reverse order). */
  onClose(step: () => Promise<unknown>): void;
}

export async function startNode(config: Readonly<Config>, roles: Roles, log: Logger, overrides: NodeOverrides = {}): Promise<RunningNode> {
  if (roles.gateway) {
    const problem = uwsProblem();
    if (problem) throw new ConfigError('uWebSockets.js', problem);
  }
  startDefaultMetrics();
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    // Reverse start order: stop accepting, drain, close queue, close store. Every step runs even
    // if one throws.
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error) => log.warn({ err: error }, 'shutdown step failed'));
    }
  };
  try {
    const secret = await resolveSigningSecret(config, log);
    const backends = chooseBackends(config, log);
    const { bus } = backends;
    if (bus.kind === 'embedded' && !(roles.gateway && roles.worker)) {
      throw new ConfigError('REDIS_URL', 'a gateway-only or worker-only process needs Redis to reach the other role; set REDIS_URL (or REDIS_CLUSTER_NODES), or use `npm start` to run both in one process');
    }
    const store = await openStoreOrExplain(config, backends.store);
    cleanups.push(() => store.close());
    // Clients' reads only: a worker reads what it writes.
    const replica = roles.gateway && backends.readReplica ? openReadReplica(backends.readReplica) : undefined;
    if (replica) cleanups.push(() => replica.close());
    const core = await startCore(config, log, bus, store.db, (step) => cleanups.push(step));
    const modes: Record<string, string> = { ...backends.modes, store: store.description };
    if (bus.kind === 'embedded') await failOrphanedRuns(store.db, log);

    let worker: TurnWorker | undefined;
    let metricsPort: number | undefined;
    modes.llm = 'none (gateway only)';
    if (roles.worker) {
      if (!roles.gateway) metricsPort = await startWorkerMetrics(core);
      const started = await startWorkerRole(core, overrides);
      worker = started.worker;
      modes.llm = started.llmDescription;
    }
    const devTokens = devTokensAllowed(config, secret, { store: backends.store.kind === 'pglite', bus: bus.kind === 'embedded' });
    const routing = new ReadRouting(store.db, replica?.db, log.child({ role: 'read-routing' }));
    const gateway = roles.gateway ? await startGatewayRole(core, secret, devTokens, overrides, routing) : undefined;
    return {
      db: store.db, statements: store.statements, readStatements: replica?.statements, events: core.events, broker: core.broker, gateway, worker, metricsPort,
      jwtSecret: secret.jwtSecret, devSecretFile: secret.devSecretFile, devTokens: devTokens && Boolean(gateway),
      llmDescription: modes.llm, modes, close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function openStoreOrExplain(config: Readonly<Config>, options: Parameters<typeof openStore>[0]): Promise<Store> {
  let store: Store;
  try {
    store = await openStore(options);
  } catch (error) {
    if (error instanceof DataDirInUseError) throw new ConfigError('DATA_DIR', error.message);
    throw error;
  }
  try {
    await migrateToLatest(store.db);
  } catch (error) {
    await store.close().catch(() => {});
    const where = options.kind === 'pglite' ? `the embedded database in ${config.dataDir}` : `Postgres at ${redactUrl(options.url)}`;
    throw new ConfigError('DATABASE_URL', `cannot reach or migrate ${where}: ${(error as Error).message}`);
  }
  return store;
}

/** The broker, the process's one event log and the turn queue, on the chosen bus. */
async function startCore(config: Readonly<Config>, log: Logger, bus: Bus, db: Kysely<Database>, onClose: Core['onClose']): Promise<Core> {
  const broker = bus.kind === 'redis' ? createBroker({ kind: 'redis', redis: bus.redis, log }) : createBroker({ kind: 'memory', log });
  onClose(() => broker.close());
  // The process's one event log: every event written here is stored and published through it.
  const events = new GroupCommitEventLog(db, broker, log.child({ role: 'event-log' }), {
    onBatch: (size, ms, stored) => {
      if (stored) metrics.observeAppendBatch(size, ms / 1000);
    },
    onStoredElsewhere: (count) => metrics.eventsStored(count),
  });
  onClose(() => events.close());
  const queue = bus.kind === 'redis'
    ? createTurnQueue({ kind: 'bullmq', redis: bus.redis, partitions: config.turnQueuePartitions, onError: () => {} })
    : createTurnQueue({ kind: 'inline', graceMs: config.worker.shutdownGraceMs });
  onClose(() => queue.close());
  if (bus.kind === 'redis') await waitForRedis(broker, bus.redis);
  return { config, log, bus, db, broker, events, queue, onClose };
}

async function startWorkerRole(core: Core, overrides: NodeOverrides): Promise<{ worker: TurnWorker; llmDescription: string }> {
  const { config, bus } = core;
  const llm = await startLlm(config);
  core.onClose(() => llm.close());
  const { startWorker } = await import('../workers/worker.js');
  const worker = await startWorker({
    db: core.db, broker: core.broker, events: core.events, queue: core.queue, llm: llm.client,
    model: config.llm.model,
    contextTokens: config.llm.contextTokens,
    tools: overrides.tools ?? createDefaultRegistry(),
    concurrency: config.worker.concurrency,
    toolTimeoutMs: config.worker.toolTimeoutMs,
    breakerFailures: config.llm.breakerFailures,
    breakerCooldownMs: config.llm.breakerCooldownMs,
    log: core.log.child({ role: 'worker' }),
    sweepOnStart: bus.kind === 'embedded',
    runStaleMs: config.worker.runStaleMs,
    pruneIntervalMs: config.worker.pruneIntervalMs,
    shutdownGraceMs: config.worker.shutdownGraceMs,
    // A fleet hands unfinished turns to another worker; a single node has no one to hand them to.
    releaseOnShutdown: bus.kind === 'redis',
  });
  core.onClose(() => worker.close());
  return { worker, llmDescription: llm.description };
}

/** A worker-only process serves /metrics on METRICS_PORT (a gateway serves it on its own port). */
async function startWorkerMetrics(core: Core): Promise<number> {
  const { host, metricsPort } = core.config;
  const server = await startMetricsServer(host, metricsPort).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError('METRICS_PORT', `cannot listen on ${host}:${metricsPort} for /metrics (${error.code ?? error.message}); set METRICS_PORT to a free port, or 0 for any`);
  });
  core.onClose(() => server.close());
  return server.port;
}

async function startGatewayRole(core: Core, secret: SigningSecret, devTokens: boolean, overrides: NodeOverrides, routing: ReadRouting): Promise<Gateway> {
  const { config, bus, db, broker } = core;
  const log = core.log.child({ role: 'gateway' });
  const verifyToken = overrides.verifyToken ?? createTokenVerifier({ ...config.auth, jwtSecret: secret.jwtSecret, log });
  const tickets = bus.kind === 'redis' ? createTicketStore({ kind: 'redis', redis: bus.redis }) : createTicketStore({ kind: 'memory' });
  core.onClose(() => tickets.close());
  const rateLimits = await RateLimiter.create({ limits: config.rateLimits, log, redis: bus.kind === 'redis' ? bus.redis : undefined });
  core.onClose(() => rateLimits.close());
  const gateway = await startGateway(config, {
    db, routing, broker, events: core.events, queue: core.queue, verifyToken, tickets, rateLimits,
    toolNames: createDefaultRegistry().names(),
    adminRole: config.auth.adminRole,
    log,
    devTokenSecret: devTokens ? secret.jwtSecret : undefined,
    checkReady: async () => {
      await pingStore(db);
      await broker.ping();
    },
  });
  core.onClose(() => gateway.close());
  return gateway;
}
