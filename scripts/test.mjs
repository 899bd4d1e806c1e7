/**
 * Runs the test suite: the test files in parallel shards (one uvu process each), then the
 * timing-sensitive files alone, and one summary in uvu's own format (the last "Total/Passed/Skipped"
 * block is the whole suite's). Every suite keeps to itself (its own database, Redis prefix and
 * ports), so shards cannot disturb one another.
 *
 *   node scripts/test.mjs [file-regex]     TEST_SHARDS=1 runs everything in one process
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filter = process.argv[2] ? new RegExp(process.argv[2]) : undefined;
const files = readdirSync(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts') && (!filter || filter.test(f)))
  .sort();

/** Run alone, after the shards: CPU-heavy, or asserting latency and memory figures. */
const SOLO = new Set(['reconnect-storm.test.ts', 'fuzz.test.ts', 'slow-consumer.test.ts', 'tenant-flood.test.ts', 'frame-flood.test.ts']);
/** Rough seconds per file, to balance the shards; unknown files count as 8. */
const WEIGHT = {
  'worker-death.test.ts': 85, 'postgres-restart.test.ts': 48, 'first-run.test.ts': 40, 'rate-limits.test.ts': 30,
  'worker-shutdown.test.ts': 30, 'redis-restart.test.ts': 28, 'embedded-crash.test.ts': 24, 'gateway-death.test.ts': 20,
  'long-poll.test.ts': 20, 'bench-smoke.test.ts': 40, 'isolation.embedded.test.ts': 19, 'cancel.test.ts': 19, 'busy.test.ts': 17,
  'golden-path.embedded.test.ts': 16, 'hostile.test.ts': 14, 'conversation.embedded.test.ts': 12,
  'llm-faults.test.ts': 12, 'isolation.redis.test.ts': 12, 'agents.embedded.test.ts': 11, 'run-sweeper.test.ts': 11,
  'policy-closes.test.ts': 20, 'long-turns.test.ts': 30, 'heartbeat.embedded.test.ts': 18, 'key-rotation.test.ts': 15,
  'dev-identity.test.ts': 15, 'widget-connect.browser.test.ts': 15, 'build.test.ts': 12, 'request-heads.test.ts': 10,
};
const shardCount = Math.max(1, Number(process.env.TEST_SHARDS ?? 2));
const shards = Array.from({ length: shardCount }, () => ({ files: [], weight: 0 }));
for (const file of files.filter((f) => !SOLO.has(f)).sort((a, b) => (WEIGHT[b] ?? 8) - (WEIGHT[a] ?? 8))) {
  const lightest = shards.reduce((a, b) => (b.weight < a.weight ? b : a));
  lightest.files.push(file);
  lightest.weight += WEIGHT[file] ?? 8;
}
const solo = files.filter((f) => SOLO.has(f));

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// Every Redis key a suite of this run makes starts with test-<run id>- (test/support/database.ts).
const runId = randomBytes(4).toString('hex');
const started = Date.now();

function runUvu(name, group) {
  // Each shard's output is printed whole when it ends (interleaved lines would be unreadable).
  process.stdout.write(`── ${name} started: ${group.length} files\n`);
  return new Promise((resolve) => {
    const pattern = `^(${group.map(escape).join('|')})$`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', pattern], {
      cwd: root,
      env: { ...process.env, TEST_RUN_ID: runId },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => {
      process.stdout.write(`\n── ${name}: ${group.join(', ')}\n${out}`);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const last = (label) => {
        const all = [...plain.matchAll(new RegExp(`^\\s*${label}:\\s*(\\d+)`, 'gm'))];
        return all.length ? Number(all[all.length - 1][1]) : undefined;
      };
      const total = last('Total');
      const counts = { total: total ?? 0, passed: last('Passed') ?? 0, skipped: last('Skipped') ?? 0, crashed: false };
      // A file that crashes its process ends the shard before uvu can count: one more failure.
      if (total === undefined || (code !== 0 && counts.passed + counts.skipped === counts.total)) {
        counts.crashed = true;
        counts.total += 1;
        process.stdout.write(`── ${name} ended with exit code ${code} before its tests could finish\n`);
      }
      resolve(counts);
    });
  });
}

const results = await Promise.all(shards.filter((s) => s.files.length > 0).map((s, i) => runUvu(`shard ${i + 1}`, s.files)));
if (solo.length > 0) results.push(await runUvu('alone', solo));
const leftKeys = await deleteRunKeys();
const sum = (key) => results.reduce((n, r) => n + r[key], 0);
const total = sum('total');
const passed = sum('passed');
const skipped = sum('skipped');
process.stdout.write(`\n── the whole suite (${files.length} files)${leftKeys ? `; removed ${leftKeys} Redis keys the suites left` : ''}\n`);
process.stdout.write(`  Total:     ${total}\n  Passed:    ${passed}\n  Skipped:   ${skipped}\n  Duration:  ${Date.now() - started}ms\n\n`);
process.exit(total > 0 && passed + skipped === total && !results.some((r) => r.crashed) ? 0 : 1);

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
