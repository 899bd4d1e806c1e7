/**
 * Runs the test suite: the test files in parallel shards (one process each, scripts/test-shard.mjs
 * running uvu), then the files marked to run alone, and writes the result as JSON. Every suite
 * keeps to itself (its own database, Redis prefix and ports), so shards cannot disturb one another.
 *
 *   node scripts/test.mjs [file-regex] [--write-timings[=results.json]]
 *
 * The result (TEST_RESULTS, default .test-results/test-results.json, git-ignored) holds uvu's
 * counts per file, as the shard reports them, and the totals:
 *   { ok, totals: { files, passed, failed, skipped, crashed, duration_ms },
 *     files: { "<name>.test.ts": { passed, failed, skipped, duration_ms, crashed, crash?, shard } }, ... }
 * A file whose process dies counts one failure more than it had reported and `crashed: true`; the
 * files after it in its shard run in a new process.
 *
 * Shards are balanced by each file's duration in the previous result, else in test/timings.json
 * (`--write-timings` records this run's durations there; `--write-timings=<file>` records those of
 * a result file without running anything), else 8 s.
 * A file whose first lines hold `// @run-alone: <why>` runs after the shards, with nothing beside
 * it: it asserts latency or memory figures that a busy machine would disturb.
 * TEST_SHARDS=1 runs everything in one process.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.resolve(root, process.env.TEST_RESULTS ?? '.test-results/test-results.json');
const TIMINGS = path.join(root, 'test/timings.json');
const DEFAULT_MS = 8_000;
const ALONE = /^\/\/ @run-alone:/m;

const args = process.argv.slice(2);
const writeTimings = args.find((a) => a === '--write-timings' || a.startsWith('--write-timings='));
const pattern = args.find((a) => !a.startsWith('--'));

if (writeTimings?.includes('=')) {
  recordTimings(readJson(path.resolve(writeTimings.slice('--write-timings='.length))));
  process.exit(0);
}

const filter = pattern ? new RegExp(pattern) : undefined;
const files = readdirSync(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts') && (!filter || filter.test(f)))
  .sort();
const alone = files.filter((f) => ALONE.test(readFileSync(path.join(root, 'test', f), 'utf8').slice(0, 4_000)));
const together = files.filter((f) => !alone.includes(f));

const previous = readJson(RESULTS)?.files ?? {};
const recorded = readJson(TIMINGS) ?? {};
const expectedMs = (file) => previous[file]?.duration_ms ?? (recorded[file] !== undefined ? recorded[file] * 1000 : DEFAULT_MS);
const shardCount = Math.max(1, Number(process.env.TEST_SHARDS ?? 2));
const shards = Array.from({ length: shardCount }, () => ({ files: [], ms: 0 }));
for (const file of [...together].sort((a, b) => expectedMs(b) - expectedMs(a))) {
  const lightest = shards.reduce((a, b) => (b.ms < a.ms ? b : a));
  lightest.files.push(file);
  lightest.ms += expectedMs(file);
}

// Every Redis key a suite of this run makes starts with test-<run id>- (test/support/database.ts).
const runId = randomBytes(4).toString('hex');
const startedAt = new Date();
const started = performance.now();
/** file -> { passed, failed, skipped, duration_ms, crashed, crash (why, when crashed), shard } */
const results = {};

const groups = shards.filter((s) => s.files.length > 0).map((s, i) => runShard(`shard ${i + 1}`, s.files));
await Promise.all(groups);
if (alone.length > 0) await runShard('alone', alone);
const leftKeys = await deleteRunKeys();

const all = Object.values(results);
const sum = (key) => all.reduce((n, r) => n + r[key], 0);
const totals = {
  files: files.length,
  passed: sum('passed'),
  failed: sum('failed'),
  skipped: sum('skipped'),
  crashed: all.filter((r) => r.crashed).length,
  duration_ms: Math.round(performance.now() - started),
};
const ok = files.length > 0 && totals.passed > 0 && totals.failed === 0;
const byName = Object.fromEntries(Object.entries(results).sort(([a], [b]) => a.localeCompare(b)));
writeJson(RESULTS, { ok, started_at: startedAt.toISOString(), filter: pattern ?? null, run_id: runId, totals, files: byName });
if (writeTimings) recordTimings({ files: results });

const failing = Object.entries(results).filter(([, r]) => r.failed > 0);
process.stdout.write(`\n── the whole suite (${files.length} files)${leftKeys ? `; removed ${leftKeys} Redis keys the suites left` : ''}\n`);
for (const [file, r] of failing) {
  process.stdout.write(`  ✘ ${file}: ${r.crashed ? `crashed (${r.crash})` : `${r.failed} failed`}, ${r.passed} passed\n`);
}
process.stdout.write(
  `  Total:     ${totals.passed + totals.failed}\n  Passed:    ${totals.passed}\n  Failed:    ${totals.failed}\n  Skipped:   ${totals.skipped}\n` +
    `  Duration:  ${totals.duration_ms}ms\n  Result:    ${path.relative(root, RESULTS)}\n\n`,
);
process.exit(ok ? 0 : 1);

/**
 * Runs `group` in a shard process and records each file's counts; when the process dies part-way,
 * the file it was in is counted as crashed and the rest run in a new process.
 */
async function runShard(name, group) {
  let left = group;
  while (left.length > 0) {
    const { reported, code, signal, output } = await runProcess(name, left);
    process.stdout.write(`\n── ${name}: ${left.join(', ')}\n${output}`);
    for (const [file, { ended, startedAt, ...r }] of reported) if (ended) results[file] = { ...r, crashed: false, shard: name };
    const unfinished = left.find((f) => !reported.get(f)?.ended);
    const anyFailed = [...reported.values()].some((r) => r.failed > 0);
    if (unfinished === undefined) {
      // Every file reported: a non-zero exit is fine only if a test failed; otherwise something
      // broke after the last test (a rejection nobody handled, say), counted on the last file.
      if ((code !== 0 || signal) && !anyFailed) {
        const last = results[left[left.length - 1]];
        last.failed += 1;
        last.crashed = true;
        last.crash = `the process ended with ${signal ?? `exit code ${code}`} after its last test`;
        process.stdout.write(`── ${name}: ${last.crash}\n`);
      }
      return;
    }
    const partial = reported.get(unfinished) ?? { passed: 0, failed: 0, skipped: 0, startedAt: performance.now() };
    const crash = `the process ended with ${signal ?? `exit code ${code}`} in this file`;
    results[unfinished] = {
      passed: partial.passed,
      failed: partial.failed + 1,
      skipped: partial.skipped,
      duration_ms: Math.round(performance.now() - partial.startedAt),
      crashed: true,
      crash,
      shard: name,
    };
    process.stdout.write(`── ${name}: ${unfinished}: ${crash}\n`);
    left = left.slice(left.indexOf(unfinished) + 1);
    if (left.length > 0) process.stdout.write(`── ${name} goes on in a new process with ${left.length} files\n`);
  }
}

/** One shard process: its output (printed whole by the caller) and what it reported per file. */
function runProcess(name, group) {
  process.stdout.write(`── ${name} started: ${group.length} files\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test-shard.mjs', ...group], {
      cwd: root,
      // FORCE_COLOR as uvu's own command line sets it.
      env: { FORCE_COLOR: '1', ...process.env, TEST_RUN_ID: runId },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const reported = new Map();
    let pending = '';
    child.stdio[3].on('data', (chunk) => {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = JSON.parse(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        const r = reported.get(line.file) ?? { passed: 0, failed: 0, skipped: 0, ended: false, startedAt: performance.now() };
        if (line.event === 'suite') {
          r.passed += line.passed;
          r.failed += line.failed;
          r.skipped += line.skipped;
        } else if (line.event === 'end') {
          Object.assign(r, { passed: line.passed, failed: line.failed, skipped: line.skipped, duration_ms: line.duration_ms, ended: true });
        }
        reported.set(line.file, r);
      }
    });
    child.on('close', (code, signal) => resolve({ reported, code, signal, output }));
  });
}

/** Merges the durations of `result` (a test-results.json) into test/timings.json, in seconds. */
function recordTimings(result) {
  const timings = readJson(TIMINGS) ?? {};
  for (const [file, r] of Object.entries(result?.files ?? {})) {
    if (!r.crashed && r.duration_ms > 0) timings[file] = Math.max(1, Math.round(r.duration_ms / 1000));
  }
  // Files that are gone are forgotten.
  const present = Object.entries(timings).filter(([file]) => existsSync(path.join(root, 'test', file)));
  const sorted = Object.fromEntries(present.sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(TIMINGS, `${JSON.stringify(sorted, null, 2)}\n`);
  process.stdout.write(`── recorded the durations of ${Object.keys(result?.files ?? {}).length} files in ${path.relative(root, TIMINGS)}\n`);
}

function readJson(file) {
  try {
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  } catch {
    return undefined; // a result cut short by a killed run: balance without it
  }
}

/** Written whole or not at all (another run may read it for its shard weights). */
function writeJson(file, value) {
  mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(partial, file);
}

/** Deletes the keys of this run's suites; returns how many there were. */
async function deleteRunKeys() {
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on('error', () => {});
  let removed = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `test-${runId}-*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== '0');
  } catch (error) {
    process.stdout.write(`── could not remove the run's Redis keys: ${error?.message ?? error}\n`);
  } finally {
    redis.disconnect();
  }
  return removed;
}
