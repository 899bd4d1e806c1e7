/**
 * The whole configuration, read from the environment once, validated, frozen. A bad setting ends
 * start-up with one line that names it (ConfigError), never a stack trace.
 */
import path from 'node:path';
import { ConfigError, deepFreeze, int, origins, str, url, type Env } from './env.js';
import { redisConfig, type RedisConfig } from './redis-config.js';

export { ConfigError };

export interface Config extends RedisConfig {
  /** @defaultValue 8080 */
  port: number;
  /** @defaultValue '0.0.0.0' */
  host: string;
  /**
   * Port of the `/metrics` endpoint of a worker-only process (a gateway serves `/metrics` on PORT).
   * 0 picks a free port. @defaultValue 9464 (the port Prometheus exporters conventionally use)
   */
  metricsPort: number;
  /** Postgres URL. Unset: embedded PGlite with its files under DATA_DIR. */
  databaseUrl?: string;
  /** Postgres connections per process. @defaultValue 10 */
  databasePoolSize: number;
  /**
   * A read replica of DATABASE_URL (streaming replication) for clients' replay, history, lists and
   * search, each read checked against the primary so that none sees less than the primary would
   * (db/read-routing.ts). Needs DATABASE_URL. Unset: every read goes to the primary.
   */
  databaseReadUrl?: string;
  /** Where local files live (embedded database, generated development secret). @defaultValue './data' */
  dataDir: string;
  auth: {
    jwtSecret?: string;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    /** @defaultValue 'workspace_id' */
    workspaceClaim: string;
    /** Claim holding the user's role(s). @defaultValue 'role' */
    roleClaim: string;
    /** The role that may create, update and delete agents. @defaultValue 'admin' */
    adminRole: string;
    /** How long a fetched key set is used (a removed key verifies no longer). @defaultValue 60000 */
    jwksCacheMaxAgeMs: number;
    /** Least time between fetches a key missing from the set causes. @defaultValue 2000 */
    jwksCooldownMs: number;
  };
  llm: {
    apiKey?: string;
    baseUrl?: string;
    /** @defaultValue 'gpt-4o-mini' (the simulator answers to any name) */
    model: string;
    /** Per-request timeout of one LLM call. @defaultValue 60000 */
    timeoutMs: number;
    /** Retries of 429/5xx/connection errors, with backoff, inside the openai SDK. @defaultValue 2 */
    maxRetries: number;
    /** Token budget of the history sent with a turn; oldest turns are dropped first. @defaultValue 16000 */
    contextTokens: number;
    /** Consecutive provider failures (after retries) that open the circuit breaker. @defaultValue 5 */
    breakerFailures: number;
    /** How long an open breaker fails turns fast (llm_unavailable) before one trial call. @defaultValue 30000 */
    breakerCooldownMs: number;
  };
  worker: {
    /** Turns one worker process runs at once. @defaultValue 8 */
    concurrency: number;
    /** On shutdown, how long active turns may finish before they are stopped (failed, worker_lost). @defaultValue 10000 */
    shutdownGraceMs: number;
    /** Deadline of one tool call; a tool still running then returns an error to the model. @defaultValue 10000 */
    toolTimeoutMs: number;
    /**
     * A running run whose worker has not written a heartbeat for this long is taken over by another
     * worker (or failed after its last attempt). Workers beat every sixth of it. @defaultValue 30000
     */
    runStaleMs: number;
    /**
     * How often a worker deletes event-write ids older than an hour (they settle writes whose
     * answer was lost; see db/event-writes.repository.ts). @defaultValue 600000
     */
    pruneIntervalMs: number;
  };
  limits: {
    /** Largest inbound frame; larger closes with 1009. @defaultValue 65536 */
    maxFrameBytes: number;
    /** Invalid (or rate-limited) frames tolerated per connection within 10 s before closing with 4008. @defaultValue 20 */
    badFramesPer10s: number;
    /** Bytes a socket may have waiting to be sent before it is closed as a slow consumer (1013). @defaultValue 1048576 */
    maxBufferedBytes: number;
    /** Seconds of silence (no frame, no pong) before a socket is closed; pings go out automatically. @defaultValue 60 */
    idleTimeoutSeconds: number;
    /** Frames of one connection waiting behind the one being handled; more are refused (rate_limited). @defaultValue 32 */
    maxQueuedFrames: number;
    /** Threads one connection may follow at once. @defaultValue 100 */
    maxSubscriptions: number;
  };
  /** Database time budgets per request class (Postgres statement_timeout; PGlite has none). */
  database: {
    /** Any one statement. @defaultValue 5000 */
    statementTimeoutMs: number;
    /** A search (the most expensive request a client can make). @defaultValue 2000 */
    searchTimeoutMs: number;
  };
  /** Per-user and per-connection limits; 0 turns one off. Shared through Redis when REDIS_URL is set. */
  rateLimits: {
    /** message.send (and POST .../messages) per user per minute. @defaultValue 60 */
    messagesPerMinute: number;
    /** Frames per connection per second. @defaultValue 50 */
    framesPerSecond: number;
    /** Open sockets per user, across all gateways. @defaultValue 50 */
    connectionsPerUser: number;
    /** Queued plus running turns per user. @defaultValue 10 */
    runsPerUser: number;
    /**
     * Requests of one user running at once on a gateway (frames of all their sockets and REST
     * calls); more wait their turn. Keeps one tenant from holding the database pool. @defaultValue 4
     */
    inFlightPerUser: number;
    /** REST requests per user per second on a gateway (every route; long-polls included). @defaultValue 20 */
    restPerSecond: number;
    /** Threads created per user per minute (thread.create, POST /v1/threads, a send without thread_id). @defaultValue 30 */
    threadsPerMinute: number;
    /** Seconds a user's handshakes are refused after its 2nd 4008 close in an hour; doubles per later one. @defaultValue 1 */
    policyBlockSeconds: number;
    /** The longest such refusal. @defaultValue 300 */
    policyBlockMaxSeconds: number;
    /** Users' 4008 closes per client address per hour before the address is refused too. @defaultValue 20 */
    policyClosesPerAddress: number;
  };
  /**
   * Browser origins allowed to open the socket (the `Origin` header); empty allows any. Clients
   * that send no Origin (servers, CLIs) are not affected. @defaultValue [] */
  allowedOrigins: string[];
  /** Access-Control-Allow-Origin of the REST mirror. @defaultValue '*' (bearer tokens, no cookies) */
  corsOrigin: string;
  logLevel: string;
  nodeEnv: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const logLevel = str(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters (HS256 needs a 256-bit secret)');
  }
  const config: Config = {
    port: int(env, 'PORT', 8080, 0, 65535),
    host: str(env, 'HOST') ?? '0.0.0.0',
    metricsPort: int(env, 'METRICS_PORT', 9464, 0, 65535),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    databaseReadUrl: readReplicaUrl(env),
    ...redisConfig(env),
    dataDir: path.resolve(str(env, 'DATA_DIR') ?? './data'),
    auth: {
      jwtSecret,
      jwksUrl: url(env, 'JWKS_URL', ['https:', 'http:']),
      issuer: str(env, 'JWT_ISSUER'),
      audience: str(env, 'JWT_AUDIENCE'),
      workspaceClaim: str(env, 'JWT_WORKSPACE_CLAIM') ?? 'workspace_id',
      roleClaim: str(env, 'JWT_ROLE_CLAIM') ?? 'role',
      adminRole: str(env, 'JWT_ADMIN_ROLE') ?? 'admin',
      jwksCacheMaxAgeMs: int(env, 'JWKS_CACHE_MAX_AGE_MS', 60_000, 0, 86_400_000),
      jwksCooldownMs: int(env, 'JWKS_COOLDOWN_MS', 2_000, 0, 600_000),
    },
    llm: {
      apiKey: str(env, 'OPENAI_API_KEY'),
      baseUrl: url(env, 'OPENAI_BASE_URL', ['https:', 'http:']),
      model: str(env, 'OPENAI_MODEL') ?? 'gpt-4o-mini',
      timeoutMs: int(env, 'LLM_TIMEOUT_MS', 60_000, 100, 3_600_000),
      maxRetries: int(env, 'LLM_MAX_RETRIES', 2, 0, 10),
      contextTokens: int(env, 'CONTEXT_TOKEN_BUDGET', 16_000, 256, 2_000_000),
      breakerFailures: int(env, 'LLM_BREAKER_FAILURES', 5, 1, 1000),
      breakerCooldownMs: int(env, 'LLM_BREAKER_COOLDOWN_MS', 30_000, 100, 3_600_000),
    },
    worker: {
      concurrency: int(env, 'WORKER_CONCURRENCY', 8, 1, 1000),
      shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
      toolTimeoutMs: int(env, 'TOOL_TIMEOUT_MS', 10_000, 10, 3_600_000),
      runStaleMs: int(env, 'RUN_STALE_MS', 30_000, 1_000, 3_600_000),
      pruneIntervalMs: int(env, 'PRUNE_INTERVAL_MS', 600_000, 100, 86_400_000),
    },
    limits: {
      maxFrameBytes: int(env, 'MAX_FRAME_BYTES', 65_536, 1024, 16 * 1024 * 1024),
      badFramesPer10s: int(env, 'BAD_FRAME_LIMIT', 20, 1, 100_000),
      maxBufferedBytes: int(env, 'MAX_BUFFERED_BYTES', 1024 * 1024, 16 * 1024, 1024 * 1024 * 1024),
      // uWebSockets.js accepts 8 to 960 seconds (0 would disable it, which we do not allow).
      idleTimeoutSeconds: int(env, 'IDLE_TIMEOUT_S', 60, 8, 960),
      maxQueuedFrames: int(env, 'MAX_QUEUED_FRAMES', 32, 1, 10_000),
      maxSubscriptions: int(env, 'MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, 1, 100_000),
    },
    database: {
      statementTimeoutMs: int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 100, 3_600_000),
      searchTimeoutMs: int(env, 'SEARCH_TIMEOUT_MS', 2_000, 50, 3_600_000),
    },
    rateLimits: {
      messagesPerMinute: int(env, 'RATE_LIMIT_MESSAGES_PER_MIN', 60, 0, 1_000_000),
      framesPerSecond: int(env, 'RATE_LIMIT_FRAMES_PER_SEC', 50, 0, 1_000_000),
      connectionsPerUser: int(env, 'RATE_LIMIT_CONNECTIONS_PER_USER', 50, 0, 1_000_000),
      runsPerUser: int(env, 'RATE_LIMIT_RUNS_PER_USER', 10, 0, 1_000_000),
      inFlightPerUser: int(env, 'RATE_LIMIT_IN_FLIGHT_PER_USER', 4, 0, 1_000_000),
      restPerSecond: int(env, 'RATE_LIMIT_REST_PER_SEC', 20, 0, 1_000_000),
      threadsPerMinute: int(env, 'RATE_LIMIT_THREADS_PER_MIN', 30, 0, 1_000_000),
      policyBlockSeconds: int(env, 'RATE_LIMIT_POLICY_BLOCK_S', 1, 0, 3600),
      policyBlockMaxSeconds: int(env, 'RATE_LIMIT_POLICY_BLOCK_MAX_S', 300, 1, 86_400),
      policyClosesPerAddress: int(env, 'RATE_LIMIT_POLICY_CLOSES_PER_ADDRESS', 20, 0, 1_000_000),
    },
    allowedOrigins: origins(env),
    corsOrigin: str(env, 'CORS_ORIGIN') ?? '*',
    logLevel,
    nodeEnv: str(env, 'NODE_ENV') ?? 'development',
  };
  return deepFreeze(config);
}

function readReplicaUrl(env: Env): string | undefined {
  const replica = url(env, 'DATABASE_READ_URL', ['postgres:', 'postgresql:']);
  if (replica && !str(env, 'DATABASE_URL')) {
    throw new ConfigError('DATABASE_READ_URL', 'is a read replica of DATABASE_URL, which is not set (the embedded database has no replica); set DATABASE_URL to the primary, or unset DATABASE_READ_URL');
  }
  return replica;
}
