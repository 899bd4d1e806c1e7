// Runs a k6 script under Node, for CI where k6 itself cannot be installed: the k6 modules it
// imports are the adapter's (hooks.mjs), each VU is a worker thread of its own, the `ramping-vus`,
// `constant-vus` and `per-vu-iterations` executors are followed, and thresholds are evaluated as
// k6 does, with two rules stricter than k6 so a broken script cannot pass: a threshold on a metric
// that got no samples fails, and an exception in an iteration fails the run.
//
//   node loadtest/k6/adapter/run.mjs loadtest/k6/chat.js -e URL=ws://... -e JWT_SECRET=... [--summary-export=out.json]
//
// Exit codes as k6's: 0 passed, 99 a threshold failed, 107 a script error.
import './register.mjs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { aggregate, evaluate } from './thresholds.mjs';
import { defined, takeSamples } from './runtime.mjs';

const args = process.argv.slice(2);
const env = {};
let scriptArg;
let summaryExport;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '-e' || arg === '--env') {
    const [key, ...rest] = args[++i].split('=');
    env[key] = rest.join('=');
  } else if (arg.startsWith('--summary-export=')) summaryExport = arg.slice('--summary-export='.length);
  else if (!scriptArg) scriptArg = arg;
  else throw new Error(`unexpected argument ${arg}`);
}
if (!scriptArg) {
  process.stderr.write('usage: run.mjs <script.js> [-e NAME=value ...] [--summary-export=file.json]\n');
  process.exit(2);
}
const script = path.resolve(scriptArg);
const VU_SCRIPT = fileURLToPath(new URL('./vu.mjs', import.meta.url));

/** '1m30s', '500ms', '2h' → milliseconds. */
function duration(text) {
  if (typeof text === 'number') return text;
  let total = 0;
  for (const [, amount, unit] of String(text).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit];
  }
  return total;
}

const metrics = new Map();
const checks = new Map();
let iterations = 0;
const errors = [];

function absorb(samples) {
  for (const sample of samples) {
    if (!metrics.has(sample.metric)) metrics.set(sample.metric, []);
    metrics.get(sample.metric).push(sample);
    if (sample.metric === 'checks') {
      const entry = checks.get(sample.tags.check) ?? { passes: 0, fails: 0 };
      if (sample.value) entry.passes += 1;
      else entry.fails += 1;
      checks.set(sample.tags.check, entry);
    }
  }
}

// The init context once in this thread: the options, and setup().
globalThis.__ENV = env;
globalThis.__VU = 0;
globalThis.__ITER = 0;
const module = await import(pathToFileURL(script).href);
const options = module.options ?? {};
let data;
try {
  data = typeof module.setup === 'function' ? await module.setup() : undefined;
} catch (error) {
  process.stderr.write(`setup() failed: ${error?.stack ?? error}\n`);
  process.exit(107);
}
absorb(takeSamples());

/** A VU: a worker that runs iterations on request until told to stop. */
function startVu(id, exec) {
  const worker = new Worker(VU_SCRIPT, { workerData: { script, env, vu: id, data, exec } });
  const vu = { id, worker, stopping: false, ended: false, ready: undefined };
  let resolveDone;
  let resolveReady;
  // Resolved once the VU's init context has run, or when the worker failed or exited first.
  vu.ready = new Promise((resolve) => (resolveReady = resolve));
  worker.on('message', (message) => {
    absorb(message.samples ?? []);
    if (message.type === 'ready') resolveReady();
    if (message.type === 'done') {
      iterations += 1;
      if (message.error) errors.push(`VU ${id}, iteration: ${message.error}`);
      resolveDone?.();
    }
  });
  // 'exit' always follows 'error': it ends the VU.
  worker.on('error', (error) => errors.push(`VU ${id}: ${error?.stack ?? error}`));
  worker.on('exit', () => {
    vu.ended = true;
    resolveReady();
    resolveDone?.();
  });
  let iteration = 0;
  vu.iterate = () => new Promise((resolve) => {
    resolveDone = resolve;
    worker.postMessage({ type: 'iterate', iteration: iteration++ });
  });
  vu.stop = () => worker.terminate();
  return vu;
}

/** Keeps the VU iterating until `shouldStop()`, then ends it. */
async function loop(vu, shouldStop, maxIterations = Infinity) {
  await vu.ready;
  let done = 0;
  while (!vu.ended && !vu.stopping && !shouldStop() && done < maxIterations) {
    await vu.iterate();
    done += 1;
  }
  await vu.stop();
}

async function rampingVus(scenario, exec) {
  const stages = (scenario.stages ?? []).map((s) => ({ ms: duration(s.duration), target: s.target }));
  const total = stages.reduce((n, s) => n + s.ms, 0);
  const gracefulRampDown = duration(scenario.gracefulRampDown ?? '30s');
  const gracefulStop = duration(scenario.gracefulStop ?? '30s');
  // As in k6, every VU the stages reach is initialized before the scenario's clock starts: on a
  // loaded machine a VU started on demand could be ready only after short stages have ended.
  const peak = Math.max(scenario.startVUs ?? 0, ...stages.map((s) => s.target));
  const idle = Array.from({ length: peak }, (_, i) => startVu(i + 1, exec));
  await Promise.all(idle.map((vu) => vu.ready));
  let nextId = peak + 1;
  const start = Date.now();
  const targetAt = (t) => {
    let from = scenario.startVUs ?? 0;
    let elapsed = 0;
    for (const stage of stages) {
      if (t < elapsed + stage.ms) return Math.floor(from + ((stage.target - from) * (t - elapsed)) / stage.ms + 1e-9);
      elapsed += stage.ms;
      from = stage.target;
    }
    return from;
  };
  const active = new Map();
  const loops = [];
  let maxVus = 0;
  const over = () => Date.now() - start >= total;
  while (!over()) {
    const target = targetAt(Date.now() - start);
    const running = [...active.values()].filter((v) => !v.stopping && !v.ended);
    for (let n = running.length; n < target; n++) {
      // A VU ramped down has ended; one needed again after that is a new one.
      const vu = idle.shift() ?? startVu(nextId++, exec);
      active.set(vu.id, vu);
      maxVus = Math.max(maxVus, active.size);
      loops.push(loop(vu, over).finally(() => active.delete(vu.id)));
    }
    // Ramping down: the newest VUs finish their iteration (within gracefulRampDown) and leave.
    for (const vu of running.sort((a, b) => b.id - a.id).slice(0, Math.max(0, running.length - target))) {
      vu.stopping = true;
      setTimeout(() => vu.stop(), gracefulRampDown).unref();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The stages are over: iterations in flight get gracefulStop to end.
  const deadline = setTimeout(() => {
    for (const vu of active.values()) {
      errors.push(`VU ${vu.id}: iteration still running after gracefulStop`);
      void vu.stop();
    }
  }, gracefulStop);
  await Promise.all(loops);
  clearTimeout(deadline);
  await Promise.all(idle.map((vu) => vu.stop()));
  return maxVus;
}

/** `count` VUs, all initialized before `stopAfterMs` (from then on) starts counting. */
async function fixedVus(count, stopAfterMs, iterationsPerVu, exec) {
  const vus = Array.from({ length: count }, (_, i) => startVu(i + 1, exec));
  await Promise.all(vus.map((vu) => vu.ready));
  const end = Date.now() + stopAfterMs;
  await Promise.all(vus.map((vu) => loop(vu, () => Date.now() >= end, iterationsPerVu)));
  return count;
}

const scenarios = options.scenarios ?? { default: { executor: 'per-vu-iterations', vus: options.vus ?? 1, iterations: options.iterations ?? 1 } };
const report = [];
for (const [name, scenario] of Object.entries(scenarios)) {
  const started = Date.now();
  let vus;
  if (scenario.executor === 'ramping-vus') vus = await rampingVus(scenario, scenario.exec);
  else if (scenario.executor === 'constant-vus') vus = await fixedVus(scenario.vus ?? 1, duration(scenario.duration), Infinity, scenario.exec);
  else if (scenario.executor === 'per-vu-iterations') vus = await fixedVus(scenario.vus ?? 1, Infinity, scenario.iterations ?? 1, scenario.exec);
  else throw new Error(`scenario ${name}: executor ${scenario.executor} is not supported by the adapter`);
  report.push(`  scenario ${name}: ${scenario.executor}, up to ${vus} VUs, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
if (typeof module.teardown === 'function') await module.teardown(data);
absorb(takeSamples());

// ---- the summary -----------------------------------------------------------------------------
const stats = new Map([...metrics].map(([name, samples]) => [name, aggregate(samples)]));
// Counters the script defined but never added to count 0 (as in k6); a trend or rate without
// samples stays absent, and a threshold on it fails.
for (const [name, definition] of defined()) {
  if (!stats.has(name) && definition.type === 'counter') stats.set(name, { type: 'counter', count: 0 });
}
const lines = ['', ...report, `  iterations: ${iterations}`, ''];
for (const [name, entry] of checks) lines.push(`  ${entry.fails === 0 ? '✓' : '✗'} ${name}: ${entry.passes} passed, ${entry.fails} failed`);
lines.push('');
const fmt = (v, isTime) => (isTime ? `${v.toFixed(1)}ms` : Number.isInteger(v) ? String(v) : v.toFixed(3));
for (const [name, s] of [...stats].sort()) {
  if (s.type === 'trend') lines.push(`  ${name}: avg=${fmt(s.avg, s.isTime)} min=${fmt(s.min, s.isTime)} med=${fmt(s.med, s.isTime)} max=${fmt(s.max, s.isTime)} p(90)=${fmt(s.percentile(90), s.isTime)} p(95)=${fmt(s.percentile(95), s.isTime)} count=${s.count}`);
  else if (s.type === 'rate') lines.push(`  ${name}: ${(s.rate * 100).toFixed(2)}% (${s.passes} of ${s.passes + s.fails})`);
  else if (s.type === 'counter') lines.push(`  ${name}: ${s.count}`);
  else lines.push(`  ${name}: ${s.value}`);
}
lines.push('', '  thresholds:');
const results = [];
for (const [name, list] of Object.entries(options.thresholds ?? {})) {
  for (const item of list) {
    const expression = typeof item === 'string' ? item : item.threshold;
    const { passed, actual } = evaluate(expression, stats.get(name));
    results.push({ metric: name, expression, passed, actual });
    lines.push(`  ${passed ? '✓' : '✗'} ${name} ${expression} (${typeof actual === 'number' ? fmt(actual, stats.get(name)?.isTime) : actual})`);
  }
}
for (const error of errors.slice(0, 10)) lines.push(`  error: ${error.split('\n')[0]}`);
if (errors.length > 10) lines.push(`  … ${errors.length - 10} more errors`);
process.stdout.write(lines.join('\n') + '\n');

if (summaryExport) {
  const metricsOut = Object.fromEntries([...stats].map(([name, s]) => [name, s.type === 'trend' ? { ...s, percentile: undefined, 'p(95)': s.percentile(95) } : s]));
  await writeFile(summaryExport, JSON.stringify({ iterations, checks: Object.fromEntries(checks), metrics: metricsOut, thresholds: results, errors }, null, 2));
}
const failedThresholds = results.filter((r) => !r.passed);
if (errors.length > 0) {
  process.stdout.write(`  script errors: ${errors.length}\n`);
  process.exit(107);
}
if (failedThresholds.length > 0) {
  process.stdout.write(`  thresholds failed: ${failedThresholds.map((r) => `${r.metric} ${r.expression}`).join(', ')}\n`);
  process.exit(99);
}
process.exit(0);
