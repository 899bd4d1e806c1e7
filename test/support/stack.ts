/**
 * A real stack for a suite: its own Postgres database, its own Redis prefix, the LLM simulator on
 * an ephemeral port, and any number of gateway / worker nodes started in this process on
 * ephemeral ports.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely } from 'kysely';
import { loadConfig } from '../../config/config.js';
import { createLogger } from '../../server/logger.js';
import { startNode, type NodeOverrides, type Roles, type RunningNode } from '../../app/node.js';
import { signToken } from '../../server/auth.js';
import { openDatabase } from '../../db/connect.js';
import type { Database } from '../../db/schema.js';
import { startLlmSim, type LlmSim, type LlmSimOptions } from '../../workers/llm-sim.js';
import { createTestDatabase, REDIS_URL, uniquePrefix, type TestDatabase } from './database.js';
import { acquireScaledServices, type ScaledServices } from './scaled-services.js';

/**
 * `redis`: Postgres + Redis + BullMQ. `embedded`: PGlite + in-process broker and queue. `scaled`:
 * Postgres with a streaming read replica (DATABASE_READ_URL) and a 3-master Redis Cluster
 * (REDIS_CLUSTER_NODES), throwaway ones shared by the suites of a process (./scaled-services.ts).
 */
export type Backend = 'redis' | 'embedded' | 'scaled';

export interface TestStack {
  backend: Backend;
  /** `scaled`: the read replica and the Redis Cluster the nodes use. */
  scaled?: Pick<ScaledServices, 'replica' | 'cluster'>;
  database?: TestDatabase;
  prefix: string;
  sim: LlmSim;
  secret: string;
  env: Record<string, string>;
  /** A direct handle on the suite's database, for assertions. */
  db: Kysely<Database>;
  start(roles?: Partial<Roles>, env?: Record<string, string>, overrides?: NodeOverrides): Promise<RunningNode>;
  /** Every log line the nodes wrote, parsed (pino NDJSON). */
  logs: Array<Record<string, any>>;
  wsUrl(node: RunningNode): string;
  token(sub: string, workspace?: string, ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export interface StackSetup {
  backend?: Backend;
  sim?: LlmSimOptions;
  /** Settings over the stack's own (e.g. REDIS_URL of a throwaway server). */
  env?: Record<string, string>;
  /**
   * `redis` backend: use this database instead of a fresh one on the shared server (e.g. one in a
   * throwaway Postgres cluster). The caller owns it: the stack does not drop it.
   */
  database?: TestDatabase;
}

export async function createStack(options: StackSetup = {}): Promise<TestStack> {
  const backend = options.backend ?? 'redis';
  const scaled = backend === 'scaled' && !options.database ? await acquireScaledServices() : undefined;
  const database = backend === 'embedded' ? undefined : options.database ?? scaled?.database ?? (await createTestDatabase());
  const prefix = uniquePrefix();
  const sim = await startLlmSim(options.sim ?? { tokenDelayMs: 1 });
  const secret = randomBytes(32).toString('hex');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-test-'));
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    // A worker-only node serves /metrics on a port of its own: any free one, so nodes and suites never collide.
    METRICS_PORT: '0',
    ...(database ? { DATABASE_URL: database.url, REDIS_URL } : {}),
    REDIS_PREFIX: prefix,
    JWT_SECRET: secret,
    DATA_DIR: dataDir,
    OPENAI_BASE_URL: sim.baseURL,
    OPENAI_API_KEY: 'test-key',
    OPENAI_MODEL: 'sim-1',
    LLM_MAX_RETRIES: '0',
    LOG_LEVEL: process.env.TEST_LOG ?? 'silent',
    // Generous rate limits (still counted, so every suite runs through the limiter): suites send
    // bursts and open hundreds of sockets per user. test/rate-limits.test.ts sets its own.
    RATE_LIMIT_MESSAGES_PER_MIN: '1000000',
    RATE_LIMIT_FRAMES_PER_SEC: '1000000',
    RATE_LIMIT_CONNECTIONS_PER_USER: '1000000',
    RATE_LIMIT_RUNS_PER_USER: '1000000',
    RATE_LIMIT_IN_FLIGHT_PER_USER: '1000000',
    RATE_LIMIT_REST_PER_SEC: '1000000',
    RATE_LIMIT_THREADS_PER_MIN: '1000000',
    MAX_QUEUED_FRAMES: '10000',
    MAX_SUBSCRIPTIONS_PER_CONNECTION: '100000',
    ...scaled?.env,
    ...options.env,
  };
  const nodes: RunningNode[] = [];
  const logs: Array<Record<string, any>> = [];
  const sink = { write: (line: string) => void logs.push(JSON.parse(line)) };
  // Embedded: the database lives inside the node, so assertions read it through the node.
  let db = database ? openDatabase({ kind: 'postgres', url: database.url, poolSize: 3 }) : undefined;
  return {
    backend,
    scaled: scaled && { replica: scaled.replica, cluster: scaled.cluster },
    database,
    prefix,
    sim,
    secret,
    env,
    logs,
    get db() {
      if (!db) throw new Error('start a node first');
      return db;
    },
    async start(roles = {}, extra = {}, overrides = {}) {
      const config = loadConfig({ ...env, ...extra });
      const node = await startNode(
        config,
        { gateway: roles.gateway ?? true, worker: roles.worker ?? true },
        createLogger(config.logLevel, sink),
        overrides,
      );
      nodes.push(node);
      db ??= node.db;
      return node;
    },
    wsUrl(node) {
      return `ws://127.0.0.1:${node.gateway!.port}/v1/ws`;
    },
    token(sub, workspace = 'acme', ttlSeconds = 3600) {
      return signToken(secret, { sub, workspace, ttlSeconds });
    },
    async close() {
      for (const node of nodes.reverse()) await node.close();
      if (database) await db?.destroy();
      await sim.close();
      if (!options.database) await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
