/**
 * Starts and stops the stack a load test runs against, in this process: one node (gateway and
 * worker), the LLM simulator on a loopback port, and a throwaway store: a fresh Postgres database
 * plus a unique Redis prefix (`redis`), or PGlite in a temporary DATA_DIR (`embedded`).
 * Everything is on 127.0.0.1 and everything is removed again by `close()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../server/logger.js';
import { startNode, type RunningNode } from '../app/node.js';
import { signToken } from '../server/auth.js';
import { startLlmSim, type LlmSim } from '../workers/llm-sim.js';

export type Backend = 'redis' | 'embedded';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = 'redis://127.0.0.1:6379';

export interface StackOptions {
  backend: Backend;
  /** Simulator: delay between streamed chunks (one chunk per word). */
  tokenDelayMs: number;
  firstTokenDelayMs: number;
  /** Simulator: words per reply. */
  replyWords: number;
  /** WORKER_CONCURRENCY: turns the node runs at once. */
  workerConcurrency: number;
  /** DATABASE_POOL_SIZE of the node. */
  poolSize: number;
}

export interface LoadStack {
  url: string;
  node: RunningNode;
  /** What each part runs on (from startNode), for the report. */
  modes: Record<string, string>;
  token(sub: string): Promise<string>;
  /** Stops everything and removes the database, Redis keys and files; returns the steps that failed. */
  close(): Promise<string[]>;
}

export async function startStack(options: StackOptions): Promise<LoadStack> {
  const cleanups: Array<[string, () => Promise<unknown>]> = [];
  const close = async () => {
    const failed: string[] = [];
    for (const [what, step] of cleanups.reverse()) {
      await step().catch((error: unknown) => failed.push(`${what}: ${(error as Error)?.message ?? error}`));
    }
    return failed;
  };
  try {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-loadtest-'));
    cleanups.push(['remove data dir', () => rm(dataDir, { recursive: true, force: true })]);
    const prefix = `loadtest-${randomBytes(6).toString('hex')}:`;
    let databaseUrl: string | undefined;
    if (options.backend === 'redis') {
      const name = `loadtest_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
      await admin(`create database "${name}"`);
      cleanups.push(['drop database', () => admin(`drop database if exists "${name}" with (force)`)]);
      cleanups.push(['delete redis keys', () => deleteKeys(prefix)]);
      const url = new URL(ADMIN_URL);
      url.pathname = `/${name}`;
      databaseUrl = url.toString();
    }
    const sim: LlmSim = await startLlmSim({
      tokenDelayMs: options.tokenDelayMs,
      firstTokenDelayMs: options.firstTokenDelayMs,
      replyWords: options.replyWords,
    });
    cleanups.push(['close llm simulator', () => sim.close()]);
    const secret = randomBytes(32).toString('hex');
    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: '0',
      ...(databaseUrl ? { DATABASE_URL: databaseUrl, REDIS_URL } : {}),
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      JWT_SECRET: secret,
      OPENAI_BASE_URL: sim.baseURL,
      OPENAI_API_KEY: 'loadtest',
      OPENAI_MODEL: 'sim-1',
      WORKER_CONCURRENCY: String(options.workerConcurrency),
      DATABASE_POOL_SIZE: String(options.poolSize),
      // The per-connection and per-socket limits stay at their defaults, so their cost is measured;
      // the per-user message and run budgets are off, since one user may run many --turns in a row.
      RATE_LIMIT_MESSAGES_PER_MIN: '0',
      RATE_LIMIT_RUNS_PER_USER: '0',
      LOG_LEVEL: 'silent',
    });
    const node = await startNode(config, { gateway: true, worker: true }, createLogger(config.logLevel));
    cleanups.push(['close node', () => node.close()]);
    return {
      url: `ws://127.0.0.1:${node.gateway!.port}/v1/ws`,
      node,
      modes: { ...node.modes, llm: `simulator at ${sim.baseURL}` },
      token: (sub) => signToken(secret, { sub, workspace: 'loadtest', ttlSeconds: 3600 }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Removes every key under the run's prefix (BullMQ leaves its bookkeeping behind). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
