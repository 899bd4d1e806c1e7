/**
 * The processes a benchmark run starts: the server by topology (each role its own process, run
 * from the compiled build with the same node flags as the npm scripts), the LLM simulator, the
 * client driver, and the raw turn's gateway and worker. Each is started with a raised open-files
 * limit and stopped on clean-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { onCleanup } from './cleanup.js';
import type { FromRawPart } from './messages.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';

export type Topology = 'all' | 'split' | '2x2';
export type Role = 'all' | 'gateway' | 'worker';

export const TOPOLOGIES: Record<Topology, Role[]> = {
  all: ['all'],
  split: ['gateway', 'worker'],
  '2x2': ['gateway', 'gateway', 'worker', 'worker'],
};

export interface Proc {
  name: string;
  role: Role | 'llm-sim' | 'driver' | 'raw-gateway' | 'raw-worker' | 'raw-publish' | 'raw-clients';
  child: ChildProcess;
  pid: number;
  /** The gateway's port (gateway and all roles, the raw gateway). */
  port?: number;
  /** Where this process serves /metrics. */
  metricsUrl?: string;
  output(): string;
  stop(): Promise<void>;
}

/** Runs `args` (argv[0] is the program) with the open-files limit raised to `fds` (as far as the hard limit allows, or further as root). */
function spawnWithFds(args: string[], options: { cwd: string; env: Record<string, string>; fds: number; ipc?: boolean }): ChildProcess {
  const script = `ulimit -n ${options.fds} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return spawn('/bin/sh', ['-c', script, 'sh', ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
}

function track(name: string, role: Proc['role'], child: ChildProcess, echo = false): Proc {
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk).slice(-20_000);
    if (echo) process.stderr.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', () => {});
  let stopping: Promise<void> | undefined;
  const proc: Proc = {
    name,
    role,
    child,
    pid: child.pid!,
    output: () => out,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
      return stopping;
    },
  };
  onCleanup(name, () => proc.stop(), () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return proc;
}

/** The node flags the npm script of a role uses (`node <flags> dist/server.js gateway`), so the benchmark runs what users run. */
export function nodeFlags(root: string, script: 'start' | 'gateway' | 'worker'): string[] {
  const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;
  const words = scripts[script]!.split(/\s+/);
  return words.slice(1, words.findIndex((w) => w.startsWith('dist/')));
}

async function waitHttp(url: string, proc: Proc, deadlineMs: number): Promise<void> {
  const up = async () => {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited ${proc.child.exitCode} at start:\n${proc.output()}`);
    return fetch(url, { signal: AbortSignal.timeout(1_000) }).then((r) => r.status === 200, () => false);
  };
  await waitFor(up, deadlineMs, () => `${proc.name}: ${url} to answer 200:\n${proc.output()}`, 50);
}

export interface ServerSetup {
  root: string;
  /** The compiled build to run (a folder with server.js). */
  buildDir: string;
  env: Record<string, string>;
  fds: number;
  /** Each server process writes a V8 CPU profile into this folder when it stops. */
  cpuProf?: string;
}

export async function startServer(topology: Topology, setup: ServerSetup): Promise<Proc[]> {
  const counts: Record<string, number> = {};
  const procs = await Promise.all(TOPOLOGIES[topology].map(async (role) => {
    counts[role] = (counts[role] ?? 0) + 1;
    const name = TOPOLOGIES[topology].filter((r) => r === role).length > 1 ? `${role}-${counts[role]}` : role;
    const port = await freePort();
    const metricsPort = await freePort();
    const flags = [
      ...nodeFlags(setup.root, role === 'all' ? 'start' : role),
      ...(setup.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${setup.cpuProf}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : []),
    ];
    const child = spawnWithFds([process.execPath, ...flags, path.join(setup.buildDir, 'server.js'), role], {
      cwd: setup.root,
      env: { ...setup.env, PORT: String(port), METRICS_PORT: String(metricsPort) },
      fds: setup.fds,
    });
    const proc = track(name, role, child);
    if (role === 'worker') {
      proc.metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    } else {
      proc.port = port;
      proc.metricsUrl = `http://127.0.0.1:${port}/metrics`;
    }
    await waitHttp(role === 'worker' ? proc.metricsUrl : `http://127.0.0.1:${port}/ready`, proc, 60_000);
    return proc;
  }));
  return procs;
}

export async function startLlmSim(setup: { root: string; buildDir: string; tokenDelayMs: number; words: number }): Promise<{ proc: Proc; baseUrl: string }> {
  const port = await freePort();
  const child = spawnWithFds([process.execPath, path.join(setup.buildDir, 'llm-sim.js')], {
    cwd: setup.root,
    env: {
      PATH: process.env.PATH ?? '',
      LLM_SIM_PORT: String(port),
      LLM_SIM_HOST: '127.0.0.1',
      LLM_SIM_TOKEN_DELAY_MS: String(setup.tokenDelayMs),
      LLM_SIM_FIRST_TOKEN_DELAY_MS: '0',
      LLM_SIM_REPLY_WORDS: String(setup.words),
    },
    fds: 65_536,
  });
  const proc = track('llm-sim', 'llm-sim', child);
  await waitHttp(`http://127.0.0.1:${port}/v1/models`, proc, 30_000);
  return { proc, baseUrl: `http://127.0.0.1:${port}/v1` };
}

/** A TypeScript child (the driver) with an IPC channel; its output is echoed to stderr. */
export function startTsChild(name: string, role: 'driver', file: string, root: string, fds: number): Proc {
  const child = spawnWithFds([process.execPath, '--import', 'tsx', file], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    fds,
    ipc: true,
  });
  return track(name, role, child, true);
}

/**
 * A part of the raw turn (loadtest/bench/raw-gateway.ts, raw-worker.ts) or of the raw publish
 * (raw-publish.ts and its clients), with the node flags of the server role it stands beside; resolves once it says it is ready (the gateway with its port).
 */
export async function startRawPart(role: 'raw-gateway' | 'raw-worker' | 'raw-publish' | 'raw-clients', file: string, setup: { root: string; env: Record<string, string>; flags: string[]; fds: number }): Promise<Proc> {
  const child = spawnWithFds([process.execPath, ...setup.flags, '--import', 'tsx', file], {
    cwd: setup.root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'production', ...setup.env },
    fds: setup.fds,
    ipc: true,
  });
  const proc = track(role, role, child);
  const port = await new Promise<number | undefined>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role}: not ready within 60 s\n${proc.output()}`)), 60_000);
    child.on('message', (message: FromRawPart) => {
      clearTimeout(timer);
      if (message.type === 'ready') resolve(message.port);
      else reject(new Error(`${role} failed to start: ${message.error}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited (${code}) at start\n${proc.output()}`));
    });
  });
  if (port !== undefined) proc.port = port;
  return proc;
}
