/** A fresh Postgres database per suite, dropped afterwards: suites never see each other's rows. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
import { redisConnections, type RedisConnections } from '../../redis/connections.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A unique Redis key/channel prefix per suite: `test-<run>-<random>:`. The test runner
 * (scripts/test.mjs) names the run in TEST_RUN_ID and deletes every key of the run when it ends,
 * also those of a suite that crashed, so a run leaves no keys behind.
 */
export function uniquePrefix(): string {
  return `test-${RUN_ID}-${randomBytes(6).toString('hex')}:`;
}

const RUN_ID = process.env.TEST_RUN_ID ?? randomBytes(4).toString('hex');

/** Redis connections for a test's own use, with its own key prefix (default: a fresh one). */
export function testRedis(prefix = uniquePrefix(), url = REDIS_URL): RedisConnections {
  return redisConnections({ url, prefix });
}
