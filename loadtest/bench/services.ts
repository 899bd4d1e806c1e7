/**
 * Postgres and Redis for a benchmark run. By default both are private: a Postgres cluster made
 * with initdb in a temporary folder (pg_stat_statements preloaded, so statements are counted from
 * outside the server) and a `redis-server` child, each on a free loopback port, removed afterwards.
 * With --database-url / --redis-url the run uses existing servers instead: a fresh database in the
 * Postgres (dropped afterwards) and a unique key prefix in the Redis (its keys deleted afterwards).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { onCleanup } from './cleanup.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';

/** A Redis server the meter reads (CPU from /proc when it runs here, commands from INFO). */
export interface RedisNode {
  /** `redis` for the single node; `redis-m<n>` / `redis-r<n>` for a cluster's masters and replicas (n: the shard). */
  name: string;
  url: string;
  pid?: number;
  role: 'single' | 'master' | 'replica';
  /** The cluster shard (1..masters) the node belongs to. */
  shard?: number;
  /** A master's slot ranges. */
  slots?: string;
}

export interface Services {
  /** The single Redis node the single-node runs use. */
  redisNodes: RedisNode[];
  databaseUrl: string;
  redisUrl: string;
  /** Key and channel prefix of this run. */
  redisPrefix: string;
  /**
   * The private cluster's postmaster: the database's CPU is its whole process tree. On an existing
   * server it is unknown; the run's own backends (pg_stat_activity) are counted instead.
   */
  postgresRoot?: number;
  redisPid?: number;
  /** pg_stat_statements is installed in the run's database. */
  statements: boolean;
  facts: Record<string, string>;
  private: boolean;
}

function pgBinDir(): string {
  const candidates = [process.env.PG_BINDIR, spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' }).stdout?.trim()];
  try {
    for (const v of readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))) {
      candidates.push(`/usr/lib/postgresql/${v}/bin`);
    }
  } catch {
    // not a Debian layout
  }
  const found = candidates.find((dir) => dir && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
  if (!found) throw new Error('no Postgres server binaries (initdb, pg_ctl) found; set PG_BINDIR, or pass --database-url');
  return found;
}

/** Postgres refuses to run as root: as root, run its commands as user postgres. */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}\n${out.slice(-2000)}`));
    });
  });
}

async function privatePostgres(): Promise<{ url: string; root: number }> {
  const bin = pgBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convo-bench-pg-'));
  const data = path.join(dir, 'data');
  const stopSync = () => {
    if (existsSync(path.join(data, 'postmaster.pid'))) {
      spawnSync(...asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop']), { cwd: dir, stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  onCleanup('postgres cluster', async () => {
    if (existsSync(path.join(data, 'postmaster.pid'))) {
      await run(...asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']), dir);
    }
    rmSync(dir, { recursive: true, force: true });
  }, stopSync);
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  await run(...asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']), dir);
  const port = await freePort();
  // Durability as a default install has it (fsync, synchronous_commit on): commits cost what they
  // cost in production. The ceiling runs on the same cluster, so the ratio compares like with like.
  const options = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-k ${dir}`, '-c max_connections=200',
    '-c shared_preload_libraries=pg_stat_statements', '-c pg_stat_statements.track=all', '-c pg_stat_statements.max=5000',
  ].join(' ');
  await run(...asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'postgres.log'), '-o', options, '-w', '-t', '30', 'start']), dir);
  const root = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, root };
}

async function privateRedis(): Promise<{ url: string; pid: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'convo-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'], {
    cwd: dir,
    stdio: 'ignore',
  });
  child.on('error', () => {});
  onCleanup('redis-server', async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  }, () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `redis://127.0.0.1:${port}`;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  let last = '';
  const answers = async () => {
    if (child.exitCode !== null) throw new Error(`redis-server did not start on ${port}: it exited ${child.exitCode}`);
    try {
      await redis.connect();
      await redis.ping();
      return true;
    } catch (error) {
      last = (error as Error).message;
      return false;
    }
  };
  await waitFor(answers, 10_000, () => `redis-server to start on ${port} (last: ${last})`, 50);
  redis.disconnect();
  return { url, pid: child.pid! };
}

/** The pid of a Redis server, when it runs on this machine (INFO says it). */
async function redisPidOf(url: string): Promise<number | undefined> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    return pid && existsSync(`/proc/${pid}/stat`) ? pid : undefined;
  } finally {
    redis.disconnect();
  }
}

export async function startServices(options: { databaseUrl?: string; redisUrl?: string }): Promise<Services> {
  const [pgServer, redisServer] = await Promise.all([
    options.databaseUrl ? undefined : privatePostgres(),
    options.redisUrl ? undefined : privateRedis(),
  ]);
  const adminUrl = options.databaseUrl ?? pgServer!.url;
  const name = `bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const facts: Record<string, string> = {};
  const postgresRoot = pgServer?.root;
  try {
    await admin.query(`create database "${name}"`);
    onCleanup('bench database', async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    });
    for (const setting of ['server_version', 'fsync', 'synchronous_commit', 'shared_buffers', 'max_connections']) {
      facts[`postgres ${setting}`] = (await admin.query(`show ${setting}`)).rows[0][setting];
    }
  } finally {
    await admin.end();
  }
  const databaseUrl = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  let statements = false;
  try {
    await db.query('create extension if not exists pg_stat_statements');
    await db.query('select pg_stat_statements_reset()');
    statements = true;
  } catch {
    // not preloaded on an existing server: statements then come from pg_stat_database
  } finally {
    await db.end();
  }
  const redisUrl = options.redisUrl ?? redisServer!.url;
  const redisPrefix = `${name}:`;
  if (options.redisUrl) {
    onCleanup('bench redis keys', async () => {
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      try {
        for (let cursor = '0'; ; ) {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
          if (keys.length > 0) await redis.del(...keys);
          if ((cursor = next) === '0') break;
        }
      } finally {
        redis.disconnect();
      }
    });
  }
  const redisPid = redisServer?.pid ?? (await redisPidOf(redisUrl).catch(() => undefined));
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  facts['redis version'] = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  facts['cpu counted for postgres'] = postgresRoot ? 'the private cluster, all its processes' : "this run's own backends (pg_stat_activity), when on this machine";
  facts['cpu counted for redis'] = redisServer ? 'the private server' : redisPid ? 'the whole server, other clients included' : 'none (not on this machine)';
  redis.disconnect();
  return {
    redisNodes: [{ name: 'redis', url: redisUrl, pid: redisPid, role: 'single' }],
    databaseUrl,
    redisUrl,
    redisPrefix,
    postgresRoot,
    redisPid,
    statements,
    facts,
    private: !options.databaseUrl,
  };
}
