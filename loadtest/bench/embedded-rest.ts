/**
 * The embedded server's memory at rest, twice: after its first start on an empty DATA_DIR (it
 * creates the database and runs every migration in that process) and after a restart on the same
 * DATA_DIR. RSS is read from /proc once a second from 5 s to 30 s after /ready first answers 200.
 * Used by the benchmark (`--scenario embedded`) and by loadtest/startup.ts (`--roles embedded-rest`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from './cleanup.js';
import { rssOf, sampleGroup } from './procstat.js';
import { freePort } from '../../test/support/ports.js';
import { sleep, waitFor } from '../../test/support/wait.js';

export const REST_FROM_S = 5;
export const REST_TO_S = 30;

export interface RestCase {
  /** Spawn to the first 200 from /ready. */
  ready_ms: number;
  /** RSS (MiB) at REST_FROM_S, REST_FROM_S + 1, ... REST_TO_S seconds after /ready. */
  rss_mib: number[];
  min_mib: number;
  max_mib: number;
}

export interface EmbeddedRest {
  first_start: RestCase;
  restart: RestCase;
}

export interface EmbeddedSetup {
  /** `node` arguments up to the role: flags and the server's entry point. */
  args: string[];
  cwd: string;
  /** Without DATA_DIR, PORT, METRICS_PORT: those are set here. */
  env: Record<string, string>;
}

async function once(setup: EmbeddedSetup, dataDir: string): Promise<RestCase> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [...setup.args, 'all'], {
    cwd: setup.cwd,
    env: { PATH: process.env.PATH ?? '', ...setup.env, DATA_DIR: dataDir, PORT: String(port), METRICS_PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // However the run ends (the benchmark's Ctrl-C included), the server does not outlive it.
  onCleanup('embedded server', async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  }, () => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (chunk) => (out = (out + chunk).slice(-20_000)));
  child.stderr.on('data', (chunk) => (out = (out + chunk).slice(-20_000)));
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`the embedded server exited ${child.exitCode} before /ready:\n${out}`);
      return fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.status === 200, () => false);
    }, 120_000, () => `the embedded server's /ready to answer 200:\n${out}`, 50);
    const readyAt = performance.now();
    const rss: number[] = [];
    for (let t = REST_FROM_S; t <= REST_TO_S; t++) {
      await sleep(readyAt + t * 1000 - performance.now()); // reading at fixed times after /ready is the point
      if (child.exitCode !== null) throw new Error(`the embedded server exited ${child.exitCode} at rest:\n${out}`);
      rss.push(rssOf(sampleGroup([child.pid!])) / 2 ** 20);
    }
    return { ready_ms: readyAt - started, rss_mib: rss, min_mib: Math.min(...rss), max_mib: Math.max(...rss) };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(kill);
    }
  }
}

/** A first start on a fresh, empty DATA_DIR, stopped, then a restart on it; the folder is removed afterwards. */
export async function embeddedAtRest(setup: EmbeddedSetup): Promise<EmbeddedRest> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'convo-embedded-rest-'));
  onCleanup('embedded DATA_DIR', async () => rmSync(dataDir, { recursive: true, force: true }), () => rmSync(dataDir, { recursive: true, force: true }));
  try {
    const first = await once(setup, dataDir);
    const restart = await once(setup, dataDir);
    return { first_start: first, restart };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
