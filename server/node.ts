/**
 * Assembles one process from its parts: store, broker, queue, LLM, and the gateway and/or worker.
 * `npm start` runs both roles; `npm run gateway` and `npm run worker` run one each.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { failAbandonedRun, runningRunIds } from '../db/runs.repository.js';
import { RunErrorCodes } from '../protocol/codes.js';
import type { Logger } from 'pino';
import { DataDirInUseError, openStore, type Store } from '../db/connect.js';
import type { StatementCounter } from '../db/statement-counter.js';
import { migrateToLatest } from '../db/migrate.js';
import { createBroker, type Broker } from '../broker/index.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { createTurnQueue } from '../queue/index.js';
import type { LlmSim } from '../workers/llm-sim.js';
import { createDefaultRegistry, type ToolRegistry } from '../workers/tools/registry.js';
import type { TurnWorker } from '../workers/worker.js';
import { metrics, startDefaultMetrics, startMetricsServer } from '../metrics/index.js';
import { createTokenVerifier, type TokenVerifier } from './auth.js';
import { ConfigError, type Config } from '../config/config.js';
import { loadOrCreateDevSecret } from './dev-secret.js';
import { startGateway, type Gateway } from './gateway.js';
import { uwsProblem } from './uws.js';
import { createTicketStore } from './tickets/index.js';
import { RateLimiter } from './rate-limits/index.js';

export interface Roles {
  gateway: boolean;
  worker: boolean;
}

export interface RunningNode {
  /** The node's store (tests read it to compare with what clients received). */
  db: Kysely<Database>;
  /** Statements the node's store has sent, by kind (benchmarks, metrics). */
  statements: StatementCounter;
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
    let jwtSecret = config.auth.jwtSecret;
    let devSecretFile: string | undefined;
    if (!jwtSecret && !config.auth.jwksUrl) {
      if (config.nodeEnv === 'production') {
        throw new ConfigError('JWT_SECRET', 'NODE_ENV=production needs JWT_SECRET (HS256) or JWKS_URL (remote key set); refusing to start with a development secret.');
      }
      const dev = await loadOrCreateDevSecret(config.dataDir);
      jwtSecret = dev.secret;
      devSecretFile = dev.file;
      log.warn({ file: dev.file, created: dev.created }, 'no JWT_SECRET or JWKS_URL: using a generated development secret (not for production)');
    }

    const embeddedStore = !config.databaseUrl;
    const embeddedBus = !config.redisUrl;
    if (embeddedBus && !(roles.gateway && roles.worker)) {
      throw new ConfigError('REDIS_URL', 'a gateway-only or worker-only process needs Redis to reach the other role; set REDIS_URL, or use `npm start` to run both in one process');
    }
    let store: Store;
    try {
      store = await openStore(
        embeddedStore
          ? { kind: 'pglite', dataDir: config.dataDir }
          : { kind: 'postgres', url: config.databaseUrl!, poolSize: config.databasePoolSize, statementTimeoutMs: config.database.statementTimeoutMs },
      );
    } catch (error) {
      if (error instanceof DataDirInUseError) throw new ConfigError('DATA_DIR', error.message);
      throw error;
    }
    cleanups.push(() => store.close());
    const db = store.db;
    try {
      await migrateToLatest(db);
    } catch (error) {
      const where = embeddedStore ? `the embedded database in ${config.dataDir}` : `Postgres at ${redactUrl(config.databaseUrl!)}`;
      throw new ConfigError('DATABASE_URL', `cannot reach or migrate ${where}: ${(error as Error).message}`);
    }

    const broker = embeddedBus
      ? createBroker({ kind: 'memory', log })
      : createBroker({ kind: 'redis', url: config.redisUrl!, prefix: config.redisPrefix, log });
    cleanups.push(() => broker.close());
    // The process's one event log: every event written here is stored and published through it.
    const events = new GroupCommitEventLog(db, broker, log.child({ role: 'event-log' }), {
      onBatch: (size, ms, stored) => {
        if (stored) metrics.observeAppendBatch(size, ms / 1000);
      },
      onStoredElsewhere: (count) => metrics.eventsStored(count),
    });
    cleanups.push(() => events.close());
    const queue = embeddedBus
      ? createTurnQueue({ kind: 'inline', graceMs: config.worker.shutdownGraceMs })
      : createTurnQueue({
          kind: 'bullmq',
          url: config.redisUrl!,
          prefix: config.redisPrefix,
          onError: (error) => {
            metrics.redisError('queue');
            log.warn({ err: error }, 'queue connection error');
          },
        });
    cleanups.push(() => queue.close());
    if (!embeddedBus) await waitForRedis(broker, config.redisUrl!);

    const modes: Record<string, string> = {
      store: embeddedStore ? store.description : `postgres ${redactUrl(config.databaseUrl!)}`,
      broker: embeddedBus ? 'in-process (single node; set REDIS_URL to scale out)' : `redis ${redactUrl(config.redisUrl!)}`,
      queue: embeddedBus ? 'in-process' : 'bullmq on redis',
    };
    if (embeddedBus) {
      // A single node owns every run: one left running was cut off by the last shutdown or crash.
      for (const runId of await runningRunIds(db)) {
        const ended = await failAbandonedRun(db, runId, 'worker_lost', RunErrorCodes.worker_lost);
        if (ended) log.warn({ run_id: runId, thread_id: ended.threadId }, 'run interrupted by the last shutdown marked failed');
      }
    }
    let llmDescription = 'none (gateway only)';
    let worker: TurnWorker | undefined;
    let metricsPort: number | undefined;
    if (roles.worker && !roles.gateway) {
      const server = await startMetricsServer(config.host, config.metricsPort).catch((error: NodeJS.ErrnoException) => {
        throw new ConfigError('METRICS_PORT', `cannot listen on ${config.host}:${config.metricsPort} for /metrics (${error.code ?? error.message}); set METRICS_PORT to a free port, or 0 for any`);
      });
      cleanups.push(() => server.close());
      metricsPort = server.port;
    }
    if (roles.worker) {
      // Loaded only by a process that runs turns: the openai SDK, the simulator and the worker's
      // modules cost a gateway-only process memory and start-up time for nothing.
      const [{ createLlmClient }, { startWorker }] = await Promise.all([import('../workers/llm-client.js'), import('../workers/worker.js')]);
      let baseURL = config.llm.baseUrl ?? 'https://api.openai.com/v1';
      let sim: LlmSim | undefined;
      if (!config.llm.apiKey && !config.llm.baseUrl) {
        const { startLlmSim } = await import('../workers/llm-sim.js');
        sim = await startLlmSim({ tokenDelayMs: 15, firstTokenDelayMs: 100, recordRequests: false });
        cleanups.push(() => sim!.close());
        baseURL = sim.baseURL;
        llmDescription = `built-in simulator at ${sim.baseURL} (set OPENAI_API_KEY or OPENAI_BASE_URL for a real model)`;
      } else {
        llmDescription = `${baseURL} model ${config.llm.model}`;
      }
      const llm = createLlmClient({
        baseURL,
        apiKey: config.llm.apiKey ?? 'not-needed',
        timeoutMs: config.llm.timeoutMs,
        maxRetries: config.llm.maxRetries,
      });
      worker = await startWorker({
        db, broker, events, queue, llm,
        model: config.llm.model,
        contextTokens: config.llm.contextTokens,
        tools: overrides.tools ?? createDefaultRegistry(),
        concurrency: config.worker.concurrency,
        toolTimeoutMs: config.worker.toolTimeoutMs,
        breakerFailures: config.llm.breakerFailures,
        breakerCooldownMs: config.llm.breakerCooldownMs,
        log: log.child({ role: 'worker' }),
        sweepOnStart: embeddedBus,
        runStaleMs: config.worker.runStaleMs,
        pruneIntervalMs: config.worker.pruneIntervalMs,
        shutdownGraceMs: config.worker.shutdownGraceMs,
        // A fleet hands unfinished turns to another worker; a single node has no one to hand them to.
        releaseOnShutdown: !embeddedBus,
      });
      cleanups.push(() => worker!.close());
    }
    modes.llm = llmDescription;

    let gateway: Gateway | undefined;
    // GET /dev/token only in embedded development mode: the generated secret, outside production,
    // on the embedded store and bus (a node on shared Postgres or Redis is not a developer's own).
    const devTokens = Boolean(devSecretFile) && config.nodeEnv !== 'production' && embeddedStore && embeddedBus;
    if (roles.gateway) {
      const verifyToken = overrides.verifyToken ?? createTokenVerifier({ ...config.auth, jwtSecret, log: log.child({ role: 'gateway' }) });
      const tickets = embeddedBus
        ? createTicketStore({ kind: 'memory' })
        : createTicketStore({ kind: 'redis', url: config.redisUrl!, prefix: config.redisPrefix });
      cleanups.push(() => tickets.close());
      const rateLimits = await RateLimiter.create({
        limits: config.rateLimits,
        log: log.child({ role: 'gateway' }),
        redis: embeddedBus ? undefined : { url: config.redisUrl!, prefix: config.redisPrefix },
      });
      cleanups.push(() => rateLimits.close());
      gateway = await startGateway(config, {
        db, broker, events, queue, verifyToken, tickets, rateLimits,
        toolNames: createDefaultRegistry().names(),
        adminRole: config.auth.adminRole,
        log: log.child({ role: 'gateway' }),
        devTokenSecret: devTokens ? jwtSecret : undefined,
        checkReady: async () => {
          await sql`select 1`.execute(db);
          await broker.ping();
        },
      });
      cleanups.push(() => gateway!.close());
    }
    return { db, statements: store.statements, events, broker, gateway, worker, metricsPort, jwtSecret, devSecretFile, devTokens: devTokens && Boolean(gateway), llmDescription, modes, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function waitForRedis(broker: { ping(): Promise<void> }, url: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await broker.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new ConfigError('REDIS_URL', `cannot reach Redis at ${redactUrl(url)}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** A URL without its password, for logs and messages. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}
