/**
 * Throwaway Redis and Postgres servers that a fault test may stop and start again at will, without
 * touching the shared servers on 6379 and 5432. Each one lives in its own temp dir (named
 * `convo-throwaway-<kind>-*`, holding an `owner` file with this process's pid) on a free loopback
 * port of its own (see freePort), so two test runs never meet.
 *
 * Clean-up happens three ways: `close()`; a process 'exit' hook (a test that threw, a crash);
 * and, at the next start of any throwaway server, a reaper that stops the servers and deletes
 * the dirs of owners that are no longer alive (a runner killed with SIGKILL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const DIR_PREFIX = 'convo-throwaway-';

export interface ThrowawayRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  dir: string;
  readonly running: boolean;
  /** Kills the server (SIGKILL unless told otherwise) and waits until it has exited. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted) and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops it if running and deletes its dir. Safe to call twice. */
  close(): Promise<void>;
  /** The server's log, for failure messages. */
  log(): string;
}

export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth) */
  url: string;
  port: number;
  dir: string;
  readonly running: boolean;
  /** `pg_ctl stop -m <mode>`: `fast` ends every session (57P01) and shuts down cleanly; `immediate` is a crash. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the cluster again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it if running and deletes its dir. Safe to call twice. */
  close(): Promise<void>;
  log(): string;
}

// ---- shared plumbing -----------------------------------------------------------------------

/** Synchronous clean-ups of servers still alive, run when the process exits. */
const atExit = new Set<() => void>();
let exitHookInstalled = false;
let reaped = false;

export function registerAtExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const cleanup of atExit) {
        try {
          cleanup();
        } catch {
          // best effort: the process is going away
        }
      }
    });
  }
  atExit.add(fn);
  return () => atExit.delete(fn);
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

export function makeDir(kind: 'redis' | 'redis-cluster' | 'pg'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${kind}-`));
  writeFileSync(path.join(dir, 'owner'), String(process.pid));
  return dir;
}

/**
 * Stops the servers of earlier runs whose process is gone and deletes their dirs. Dirs of live
 * owners (another test run right now) are left alone.
 */
export function reapStale(): void {
  if (reaped) return;
  reaped = true;
  let entries: string[];
  try {
    entries = readdirSync(os.tmpdir()).filter((name) => name.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = path.join(os.tmpdir(), name);
    try {
      const owner = readPid(path.join(dir, 'owner'));
      if (owner === undefined) {
        // Being created right now by another run, or a half-made dir: only very old ones go.
        if (Date.now() - statSync(dir).mtimeMs < 10 * 60_000) continue;
      } else if (isAlive(owner)) {
        continue;
      }
      if (name.startsWith(`${DIR_PREFIX}redis-`)) {
        // redis.pid of a single server; redis-<port>.pid of each node of a cluster.
        for (const file of readdirSync(dir).filter((f) => f.endsWith('.pid'))) {
          const pid = readPid(path.join(dir, file));
          if (pid && cmdline(pid).includes('redis-server')) process.kill(pid, 'SIGKILL');
        }
      } else if (name.startsWith(`${DIR_PREFIX}pg-`)) {
        const data = path.join(dir, 'data');
        if (existsSync(path.join(data, 'postmaster.pid'))) {
          const bin = pgBinDir();
          spawnSync(...asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']), { cwd: dir, stdio: 'ignore' });
        }
      }
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // someone else's problem to report; never fail a test over a stale dir
    }
  }
}


export function tail(file: string, chars = 2_000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-chars);
  } catch {
    return '(no log)';
  }
}

/** Resolves when `child` has exited, or rejects after `timeoutMs` (the timer keeps the loop alive). */
export function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Runs a command to completion (resolving on exit, not on stdio close); rejects on a non-zero exit. */
export function runCommand(command: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(args.find((a) => a.includes('/')) ?? command)} timed out after ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}\n${output}`));
    });
  });
}

// ---- Redis ---------------------------------------------------------------------------------

export function pingRedis(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk;
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/** A private `redis-server` child process (not daemonized) on a free loopback port, persisting nothing. */
export async function startThrowawayRedis(): Promise<ThrowawayRedis> {
  reapStale();
  const dir = makeDir('redis');
  const logFile = path.join(dir, 'redis.log');
  const pidFile = path.join(dir, 'redis.pid');
  let child: ChildProcess | undefined;
  let port = 0;

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const spawnServer = async () => {
    const fd = openSync(logFile, 'a');
    try {
      child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--save', '',
          '--appendonly', 'no',
          '--dir', dir,
          '--pidfile', pidFile,
          '--daemonize', 'no',
          '--loglevel', 'warning',
        ],
        { cwd: dir, stdio: ['ignore', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    const proc = child;
    proc.on('error', () => {}); // a failed kill of an exited process, say; exits are watched below
    // Not a reason to keep the test process alive: waits below hold their own timers.
    proc.unref();
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    const answers = async () => {
      if (!alive() || child !== proc) throw new Error(`redis-server on port ${port} exited at start:\n${tail(logFile)}`);
      return pingRedis(port);
    };
    await waitFor(answers, 10_000, () => `redis-server on port ${port} to answer PING:\n${tail(logFile)}`, 20).catch((error: unknown) => {
      if (alive() && child === proc) proc.kill('SIGKILL');
      throw error;
    });
  };

  const killSync = () => {
    if (alive() && child!.pid) process.kill(child!.pid, 'SIGKILL');
  };
  const unregister = registerAtExit(() => {
    killSync();
    rmSync(dir, { recursive: true, force: true });
  });

  // A port can be taken between the probe and redis-server's bind: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await spawnServer();
      break;
    } catch (error) {
      if (attempt >= 2) {
        unregister();
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  let closing: Promise<void> | undefined;
  const stop = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL') => {
    if (!alive()) return;
    const proc = child!;
    proc.kill(signal);
    await exited(proc, 10_000);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return alive();
    },
    stop,
    async start() {
      if (closing) throw new Error('this throwaway Redis is closed');
      if (alive()) throw new Error(`redis-server on port ${port} is already running`);
      await spawnServer();
    },
    close() {
      closing ??= (async () => {
        try {
          await stop('SIGKILL');
        } finally {
          unregister();
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
    log: () => tail(logFile, 10_000),
  };
}

// ---- Postgres ------------------------------------------------------------------------------

let cachedBinDir: string | undefined;

/** The server binaries (initdb, pg_ctl): PG_BINDIR, `pg_config --bindir`, or the newest /usr/lib/postgresql/N/bin. */
export function pgBinDir(): string {
  if (cachedBinDir) return cachedBinDir;
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && fromConfig.stdout.trim()) candidates.push(fromConfig.stdout.trim());
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  } catch {
    // not a Debian layout
  }
  const found = candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
  if (!found) throw new Error(`no Postgres server binaries (initdb, pg_ctl) found; looked in ${candidates.join(', ') || 'nothing'}; set PG_BINDIR`);
  return (cachedBinDir = found);
}

/** Postgres refuses to run as root: as root, run the command as user postgres. */
export function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

function postgresIds(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root, but there is no user "postgres" to run the cluster as');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A private Postgres cluster (initdb into a fresh temp dir, trust auth, user postgres) on a free
 * loopback port, its socket in its own dir, with durability off (fsync, synchronous_commit,
 * full_page_writes) for speed: `immediate` stops still recover, only an OS crash would lose data.
 * `settings`: more server settings (`name=value`), e.g. shared_preload_libraries.
 */
export async function startThrowawayPostgres(options: { settings?: string[] } = {}): Promise<ThrowawayPostgres> {
  const bin = pgBinDir();
  return startThrowawayCluster({
    settings: options.settings,
    init: (data, dir) => runCommand(
      ...asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']),
      dir,
    ),
  });
}

/** How a throwaway cluster's data dir is made: initdb, or a base backup of another cluster (./throwaway-replica.ts). */
export interface ClusterSetup {
  /** Fills `data` (inside `dir`, which belongs to user postgres when running as root); runs as postgres via `asPostgres`. */
  init(data: string, dir: string): Promise<unknown>;
  settings?: string[];
}

/** A cluster in a fresh throwaway dir, made by `setup.init`, started on a free port, cleaned up like every throwaway. */
export async function startThrowawayCluster(setup: ClusterSetup): Promise<ThrowawayPostgres> {
  reapStale();
  const bin = pgBinDir();
  const pgCtl = path.join(bin, 'pg_ctl');
  const dir = makeDir('pg');
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  let port = 0;
  let running = false;

  const stopSync = () => {
    if (existsSync(path.join(data, 'postmaster.pid'))) {
      spawnSync(...asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']), { cwd: dir, stdio: 'ignore' });
    }
  };
  const unregister = registerAtExit(() => {
    stopSync();
    rmSync(dir, { recursive: true, force: true });
  });
  const fail = async (error: unknown): Promise<never> => {
    stopSync();
    unregister();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  };

  const startServer = async () => {
    const options = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-k ${dir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=100',
      ...(setup.settings ?? []).map((setting) => `-c ${setting}`),
    ].join(' ');
    try {
      await runCommand(...asPostgres(pgCtl, ['-D', data, '-l', logFile, '-o', options, '-w', '-t', '30', 'start']), dir);
    } catch (error) {
      throw new Error(`${(error as Error).message}\npostgres log:\n${tail(logFile)}`);
    }
    running = true;
  };

  try {
    await setup.init(data, dir);
  } catch (error) {
    await fail(error);
  }
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await startServer();
      break;
    } catch (error) {
      if (attempt >= 2) await fail(error);
    }
  }

  let closing: Promise<void> | undefined;
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    await runCommand(...asPostgres(pgCtl, ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']), dir);
    running = false;
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    get running() {
      return running;
    },
    stop,
    async start() {
      if (closing) throw new Error('this throwaway Postgres is closed');
      if (running) throw new Error(`the cluster on port ${port} is already running`);
      await startServer();
    },
    close() {
      closing ??= (async () => {
        try {
          if (running) await stop('immediate');
        } catch {
          stopSync();
        } finally {
          unregister();
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
    log: () => tail(logFile, 10_000),
  };
}
