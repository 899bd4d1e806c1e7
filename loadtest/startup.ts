/**
 * Start-up time and base RSS of the server's processes: each role is started as its own process
 * (as `npm start` / `npm run gateway` / `npm run worker` would), timed from spawn to its `started`
 * log line, left idle for a moment, and its resident memory read from /proc. Median of --repeat.
 *
 *   node --import tsx loadtest/startup.ts [--runner dist|tsx] [--root DIR] [--repeat 3]
 *     [--roles embedded,all,gateway,worker,embedded-rest] [--idle-ms 3000] [--node-options '...']
 *     [--rest-repeat 1]
 *
 * `all`, `gateway` and `worker` run on Postgres and Redis (TEST_DATABASE_ADMIN_URL, TEST_REDIS_URL;
 * a fresh database, dropped afterwards); `embedded` is `all` with neither (PGlite, in-process).
 * `embedded-rest` is the embedded server at rest, twice: its first start on an empty DATA_DIR (it
 * creates the database and runs every migration) and a restart on that DATA_DIR; RSS is read every
 * second from 5 s to 30 s after /ready answers. `--root` measures another checkout of the project
 * (one with its own node_modules).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { freePort } from '../test/support/ports.js';
import { sleep } from '../test/support/wait.js';
import { embeddedAtRest, REST_FROM_S, REST_TO_S, type EmbeddedRest } from './bench/embedded-rest.js';
import { table } from './stats.js';

const { values } = parseArgs({
  options: {
    runner: { type: 'string', default: 'dist' },
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    repeat: { type: 'string', default: '3' },
    roles: { type: 'string', default: 'embedded,all,gateway,worker,embedded-rest' },
    'idle-ms': { type: 'string', default: '3000' },
    'node-options': { type: 'string', default: '' },
    'rest-repeat': { type: 'string', default: '1' },
  },
});
const root = path.resolve(values.root!);
const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function command(role: string): string[] {
  const mainRole = role === 'embedded' ? 'all' : role;
  const extra = values['node-options'] ? values['node-options'].split(/\s+/) : [];
  return values.runner === 'tsx' ? [...extra, '--import', 'tsx', 'app/main.ts', mainRole] : [...extra, 'dist/server.js', mainRole];
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function once(role: string, env: Record<string, string>): Promise<{ startMs: number; rssMiB: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, command(role), { cwd: root, env: { PATH: process.env.PATH!, ...env, PORT: String(await freePort()), METRICS_PORT: String(await freePort()) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    const startMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${role}: no 'started' line within 60 s\n${out}`)), 60_000);
      const onData = (chunk: Buffer) => {
        out += chunk;
        if (/"msg":"started"/.test(out)) {
          clearTimeout(timer);
          resolve(performance.now() - started);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk) => (out += chunk));
      child.once('exit', (code) => reject(new Error(`${role}: exited ${code} before starting\n${out}`)));
    });
    await sleep(Number(values['idle-ms'])); // the idle time is the point: memory is read after it
    return { startMs, rssMiB: rssMiB(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The embedded server at rest after a first start on an empty DATA_DIR, and after a restart on it; median of --rest-repeat. */
async function embeddedRestRows(common: Record<string, string>): Promise<Array<Array<string | number>>> {
  const runs: EmbeddedRest[] = [];
  for (let i = 0; i < Number(values['rest-repeat']); i++) {
    runs.push(await embeddedAtRest({ args: command('embedded').slice(0, -1), cwd: root, env: { ...common, OPENAI_BASE_URL: '', OPENAI_API_KEY: '' } }));
  }
  const mib = (x: number) => x.toFixed(1);
  const mb = (x: number) => ((x * 2 ** 20) / 1e6).toFixed(0);
  return (['first_start', 'restart'] as const).map((name) => {
    const cases = runs.map((r) => r[name]);
    const min = Math.min(...cases.map((c) => c.min_mib));
    const max = Math.max(...cases.map((c) => c.max_mib));
    return [
      name === 'first_start' ? 'first start (empty DATA_DIR)' : 'restart (same DATA_DIR)',
      Math.round(median(cases.map((c) => c.ready_ms))),
      mib(median(cases.map((c) => c.rss_mib[0]!))),
      mib(median(cases.map((c) => c.rss_mib.at(-1)!))),
      `${mib(min)}-${mib(max)}`,
      `${mb(min)}-${mb(max)}`,
    ];
  });
}

const dbName = `startup_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'convo-startup-'));
const databaseUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
const rows: Array<Array<string | number>> = [];
let restRows: Array<Array<string | number>> = [];
try {
  const common = { HOST: '127.0.0.1', LOG_LEVEL: 'info', JWT_SECRET: randomBytes(32).toString('hex'), OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', OPENAI_API_KEY: 'unused' };
  for (const role of values.roles!.split(',')) {
    if (role === 'embedded-rest') {
      restRows = await embeddedRestRows(common);
      continue;
    }
    const env = role === 'embedded'
      ? { ...common, DATA_DIR: dataDir, OPENAI_BASE_URL: '', OPENAI_API_KEY: '' }
      : { ...common, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REDIS_PREFIX: `${dbName}:` };
    await once(role, env); // warm-up: migrations, the file cache
    const runs = [];
    for (let i = 0; i < Number(values.repeat); i++) runs.push(await once(role, env));
    rows.push([role, Math.round(median(runs.map((r) => r.startMs))), median(runs.map((r) => r.rssMiB)).toFixed(1)]);
  }
} finally {
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
  // BullMQ leaves its queue's keys behind: removed with the prefix.
  const redis = new Redis(redisUrl);
  for (let cursor = '0'; ; ) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${dbName}:*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    if ((cursor = next) === '0') break;
  }
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(`runner ${values.runner}${values['node-options'] ? ` (${values['node-options']})` : ''}, ${root}`);
if (rows.length > 0) {
  console.log(`\nstart-up and base RSS, median of ${values.repeat}, RSS after ${values['idle-ms']} ms idle`);
  console.log(table(['role', 'start-up (ms)', 'RSS (MiB)'], rows));
}
if (restRows.length > 0) {
  console.log(`\nthe embedded server at rest: RSS every second from ${REST_FROM_S} s to ${REST_TO_S} s after /ready answered, median of ${values['rest-repeat']}`);
  console.log(table(['embedded', 'spawn to /ready (ms)', `RSS at ${REST_FROM_S} s (MiB)`, `RSS at ${REST_TO_S} s (MiB)`, 'RSS range (MiB)', 'RSS range (MB)'], restRows));
}
