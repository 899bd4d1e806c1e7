/** Runs the real entry points as child processes and reads what they print. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The environment a fresh shell would have: no configuration of ours leaks in. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'npm_config_cache'];
  const env: Record<string, string> = {};
  for (const key of keep) if (process.env[key]) env[key] = process.env[key]!;
  return { ...env, ...extra };
}

export interface Child {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits until stdout matches; returns the match. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited(timeoutMs?: number): Promise<number | null>;
  /** Signals the whole process group (npm runs node as a child). */
  kill(signal?: NodeJS.Signals): void;
}

export function run(command: string, args: string[], env: Record<string, string>, cwd = ROOT): Child {
  const proc = spawn(command, args, { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  proc.stdout!.on('data', (chunk) => {
    out += chunk;
    for (const l of listeners) l();
  });
  proc.stderr!.on('data', (chunk) => {
    err += chunk;
    for (const l of listeners) l();
  });
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => {
    // 'close', not 'exit': 'exit' can come before the last of stdout has been read.
    proc.on('close', (code, signal) => {
      exitCode = code ?? (signal ? 128 : null);
      resolve(exitCode);
      for (const l of listeners) l();
    });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) return finish(() => resolve(match));
          if (exitCode !== undefined) finish(() => reject(new Error(`exited (${exitCode}) before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${pattern}\nstdout: ${out}\nstderr: ${err}`))), timeoutMs);
        const finish = (fn: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          fn();
        };
        listeners.add(check);
        check();
      });
    },
    exited(timeoutMs = 30_000) {
      return Promise.race([
        exit,
        new Promise<number | null>((_, reject) => setTimeout(() => reject(new Error('process did not exit in time')), timeoutMs).unref()),
      ]);
    },
    kill(signal = 'SIGTERM') {
      if (exitCode !== undefined || proc.pid === undefined) return;
      try {
        process.kill(-proc.pid, signal);
      } catch {
        // already gone
      }
    },
  };
}

/** The server's entry point, run from source as `npm start` runs its build. */
export const ENTRY_POINT = 'app/main.ts';

/**
 * `node --import tsx app/main.ts [role]` with only `env` (over a fresh shell's environment): a
 * node of the server in a process of its own, for the suites that kill, freeze or restart one.
 */
export function startNode(role: 'all' | 'gateway' | 'worker' | undefined, env: Record<string, string>): Child {
  return run(process.execPath, ['--import', 'tsx', ENTRY_POINT, ...(role ? [role] : [])], cleanEnv(env));
}

/** Waits for a node's `ready: ws://...` line; returns that WebSocket URL. */
export async function readyUrl(child: Child, timeoutMs = 30_000): Promise<string> {
  const [, url] = await child.waitFor(/ready: (ws:\/\/\S+)/, timeoutMs);
  return url!;
}
