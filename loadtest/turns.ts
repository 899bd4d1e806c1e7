/**
 * Load generator: starts its own stack in this process, connects N users at once, has each run
 * its turns one after another on its own thread, and prints latencies, throughput and
 * correctness (a table and one JSON line). Exit code 1 if any check fails or the deadline passes.
 *
 *   node --import tsx loadtest/turns.ts [--backend redis|embedded] [--clients 200] [--turns 2]
 *     [--words 40] [--token-delay-ms 5] [--first-token-delay-ms 0] [--workers 8] [--pool 10] [--deadline-s 120]
 */
import os from 'node:os';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LoadClient } from './client.js';
import { startStack, type Backend, type LoadStack } from './stack.js';
import { latencyTable, summarize, table } from './stats.js';
import { STATEMENT_KINDS, type StatementStats } from '../db/statement-counter.js';

function options() {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'redis' },
      clients: { type: 'string', default: '200' },
      turns: { type: 'string', default: '2' },
      words: { type: 'string', default: '40' },
      'token-delay-ms': { type: 'string', default: '5' },
      'first-token-delay-ms': { type: 'string', default: '0' },
      workers: { type: 'string', default: '8' },
      pool: { type: 'string', default: '10' },
      'deadline-s': { type: 'string', default: '120' },
    },
  });
  const int = (name: keyof typeof values, min: number, max: number) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
    return value;
  };
  if (values.backend !== 'redis' && values.backend !== 'embedded') throw new Error('--backend must be redis or embedded');
  return {
    backend: values.backend as Backend,
    clients: int('clients', 1, 20_000),
    turns: int('turns', 1, 1_000),
    words: int('words', 1, 10_000),
    tokenDelayMs: int('token-delay-ms', 0, 60_000),
    firstTokenDelayMs: int('first-token-delay-ms', 0, 60_000),
    workers: int('workers', 1, 1_000),
    pool: int('pool', 1, 1_000),
    deadlineS: int('deadline-s', 1, 86_400),
  };
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    total_memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    /** 1-minute load average at start: a busy machine skews every figure. */
    load_avg_1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

/** Settles `promise`, or gives up when `ms` pass or `signal` aborts (resolving undefined). */
async function bounded<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  const stop = new AbortController();
  const timeout = sleep(ms, undefined, { signal: stop.signal }).catch(() => undefined);
  const aborted = new Promise<undefined>((resolve) => signal?.addEventListener('abort', () => resolve(undefined), { once: true }));
  try {
    return await Promise.race([promise, timeout, aborted]);
  } finally {
    stop.abort();
  }
}

interface Check {
  name: string;
  ok: number;
  total: number;
}

function correctness(clients: LoadClient[], turns: number, storedLastSeq: Map<string, number> | undefined): Check[] {
  const runs = clients.flatMap((c) => c.turns.filter((t) => t.runId).map((t) => c.runs.get(t.runId!)));
  const count = (name: string, total: number, ok: number) => ({ name, ok, total });
  return [
    count('clients connected (session.ready)', clients.length, clients.filter((c) => c.connectMs !== undefined).length),
    count('turns completed', clients.length * turns, clients.reduce((n, c) => n + c.turns.filter((t) => t.turnMs !== undefined).length, 0)),
    count('client seqs gap-free 1..n, one thread', clients.length, clients.filter((c) =>
      c.seqs.length > 0 && c.threadIds.size === 1 && c.seqs.every((seq, i) => seq === i + 1)).length),
    ...(storedLastSeq
      ? [count('client got every stored event (n = last_seq)', clients.length, clients.filter((c) =>
          c.threadId !== undefined && storedLastSeq.get(c.threadId) === c.seqs.length).length)]
      : []),
    count('exactly one agent_completed per run', runs.length, runs.filter((r) => r?.completed === 1).length),
    count('runs ended with status completed', runs.length, runs.filter((r) => r?.status === 'completed').length),
    count('deltas joined == final message', runs.length, runs.filter((r) =>
      r !== undefined && r.deltas.length > 0 && r.deltas.join('') === r.content).length),
    count('no error frames, socket errors or unexpected closes', clients.length, clients.filter((c) => c.problems.length === 0).length),
  ];
}

async function storedSeqs(stack: LoadStack, clients: LoadClient[]): Promise<Map<string, number>> {
  const ids = clients.map((c) => c.threadId).filter((id): id is string => id !== undefined);
  if (ids.length === 0) return new Map();
  const rows = await stack.node.db.selectFrom('threads').select(['id', 'last_seq']).where('id', 'in', ids).execute();
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
}

async function main(): Promise<number> {
  const opts = options();
  const facts = machine();
  const deadline = new AbortController();
  setMaxListeners(opts.clients + 50, deadline.signal);
  const deadlineTimer = setTimeout(() => deadline.abort(), opts.deadlineS * 1000);
  const failures: string[] = [];
  const note = (what: string, error: unknown): void => void failures.push(`${what}: ${(error as Error)?.message ?? error}`);

  console.log(`load test: backend ${opts.backend}, ${opts.clients} clients x ${opts.turns} turns, ${opts.words} words/reply, ` +
    `token delay ${opts.tokenDelayMs} ms, first-token delay ${opts.firstTokenDelayMs} ms, WORKER_CONCURRENCY ${opts.workers}, deadline ${opts.deadlineS} s`);
  console.log(`machine: ${facts.cpus} x ${facts.cpu_model}, ${facts.total_memory_gib} GiB RAM, node ${facts.node}, ${facts.platform}, load avg ${facts.load_avg_1m}`);

  const starting = startStack({
    backend: opts.backend,
    tokenDelayMs: opts.tokenDelayMs,
    firstTokenDelayMs: opts.firstTokenDelayMs,
    replyWords: opts.words,
    workerConcurrency: opts.workers,
    poolSize: opts.pool,
  });
  starting.catch(() => {});
  const stack = await bounded(starting, opts.deadlineS * 1000, deadline.signal).catch((error) => note('stack start', error));
  const clients = Array.from({ length: opts.clients }, (_, i) => new LoadClient(i + 1, deadline.signal));
  let connectPhaseS = NaN;
  let turnPhaseS = NaN;
  let stored: Map<string, number> | undefined;
  let statementsBefore: StatementStats | undefined;
  let statementsAfter: StatementStats | undefined;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  if (stack) {
    console.log(`stack: ${Object.entries(stack.modes).map(([k, v]) => `${k} ${v}`).join('; ')}`);
    const tokens = await Promise.all(clients.map((c) => stack.token(`loadtest-user-${c.index}`)));

    // Clients and server share this event loop: a long stall delays both, and shows up here.
    loopDelay.enable();
    const connectStart = performance.now();
    const connected = await Promise.allSettled(clients.map((c, i) => c.connect(stack.url, tokens[i]!)));
    connectPhaseS = (performance.now() - connectStart) / 1000;
    connected.forEach((r, i) => r.status === 'rejected' && note(`client ${i + 1} connect`, r.reason));

    statementsBefore = stack.node.statements.snapshot();
    const turnStart = performance.now();
    const ran = await Promise.allSettled(clients.map((c) =>
      c.connectMs === undefined ? Promise.resolve() : c.runTurns(opts.turns)));
    turnPhaseS = (performance.now() - turnStart) / 1000;
    statementsAfter = stack.node.statements.snapshot();
    ran.forEach((r, i) => r.status === 'rejected' && note(`client ${i + 1} turns`, r.reason));

    // Late duplicates (a second agent_completed, a replayed event) would show up now.
    if (!deadline.signal.aborted) await sleep(300);
    stored = await bounded(storedSeqs(stack, clients), 5_000).catch((error) => (note('reading last_seq', error), undefined));
  }
  loopDelay.disable();
  const timedOut = deadline.signal.aborted;
  clearTimeout(deadlineTimer);
  await Promise.all(clients.map((c) => c.close()));

  const turns = clients.flatMap((c) => c.turns);
  const num = (values: Array<number | undefined>) => values.filter((v): v is number => v !== undefined);
  const latency = {
    'connect+session.ready': summarize(num(clients.map((c) => c.connectMs))),
    'ack': summarize(num(turns.map((t) => t.ackMs))),
    'ack, turn 1 (burst)': summarize(num(clients.map((c) => c.turns[0]?.ackMs))),
    'ack, turns 2+': summarize(num(clients.flatMap((c) => c.turns.slice(1).map((t) => t.ackMs)))),
    'first message_delta': summarize(num(turns.map((t) => t.firstDeltaMs))),
    'full turn': summarize(num(turns.map((t) => t.turnMs))),
  };
  const ms = (ns: number) => Math.round(ns / 1e5) / 10;
  const loop = loopDelay.count > 0
    ? { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) }
    : { p50: NaN, p99: NaN, max: NaN };
  const events = clients.reduce((n, c) => n + c.events, 0);
  const frames = clients.reduce((n, c) => n + c.frames, 0);
  const turnsDone = turns.filter((t) => t.turnMs !== undefined).length;
  const rate = (n: number) => Math.round((n / turnPhaseS) * 10) / 10;
  const checks = correctness(clients, opts.turns, stored);
  const sql = statementsPerTurn(statementsBefore, statementsAfter, turnsDone);
  const passed = !timedOut && failures.length === 0 && checks.every((c) => c.ok === c.total);

  console.log('');
  console.log(latencyTable(latency));
  console.log('');
  console.log(table(['throughput', 'value'], [
    ['connect phase (s)', connectPhaseS.toFixed(2)],
    ['turn phase (s)', turnPhaseS.toFixed(2)],
    ['turns completed', turnsDone],
    ['turns/s', rate(turnsDone)],
    ['thread events received', events],
    ['events/s (turn phase)', rate(events)],
    ['frames received (all types)', frames],
    ['event-loop delay p50/p99/max (ms)', `${loop.p50} / ${loop.p99} / ${loop.max}`],
    ['SQL statements (round trips) per turn', sql ? `${sql.statements} (${STATEMENT_KINDS.map((k) => `${k} ${sql.by_kind[k]}`).join(', ')})` : 'n/a'],
    ['SQL statement time per turn (ms)', sql ? sql.ms : 'n/a'],
  ]));
  console.log('');
  console.log(table(['correctness', 'ok', 'of'], checks.map((c) => [c.name, c.ok, c.total])));
  if (timedOut) console.log(`\nDEADLINE: ${opts.deadlineS} s passed; the figures above are partial`);
  const problems = [...failures, ...clients.flatMap((c) => c.problems.map((p) => `client ${c.index}: ${p}`))];
  if (problems.length > 0) {
    console.log(`\n${problems.length} problem(s), first ${Math.min(10, problems.length)}:`);
    for (const problem of problems.slice(0, 10)) console.log(`  ${problem}`);
  }

  const cleanupFailures = stack ? (await bounded(stack.close(), 30_000)) ?? ['cleanup did not finish within 30 s'] : [];
  if (!stack) await bounded(starting.then((s) => s.close()), 30_000).catch(() => {});
  for (const failure of cleanupFailures) console.log(`cleanup: ${failure}`);
  console.log(`\nRESULT: ${passed && cleanupFailures.length === 0 ? 'PASS' : 'FAIL'}`);
  console.log(JSON.stringify({
    result: passed && cleanupFailures.length === 0 ? 'pass' : 'fail',
    options: opts,
    machine: facts,
    timed_out: timedOut,
    latency_ms: latency,
    connect_phase_s: round(connectPhaseS),
    turn_phase_s: round(turnPhaseS),
    turns_completed: turnsDone,
    turns_per_s: rate(turnsDone),
    events: events,
    events_per_s: rate(events),
    frames,
    event_loop_delay_ms: loop,
    sql_per_turn: sql,
    checks: Object.fromEntries(checks.map((c) => [c.name, `${c.ok}/${c.total}`])),
    problems: problems.length,
  }));
  return passed && cleanupFailures.length === 0 ? 0 : 1;
}

/**
 * Statements the node's store sent during the turn phase, per completed turn: sends, claims,
 * events, messages and everything else the server did meanwhile (heartbeats, sweeps).
 */
function statementsPerTurn(before: StatementStats | undefined, after: StatementStats | undefined, turns: number) {
  if (!before || !after || turns === 0) return undefined;
  const per = (n: number) => Math.round((n / turns) * 10) / 10;
  return {
    statements: per(after.count - before.count),
    ms: per(after.ms - before.ms),
    by_kind: Object.fromEntries(STATEMENT_KINDS.map((k) => [k, per(after.byKind[k].count - before.byKind[k].count)])) as Record<string, number>,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

main().then(
  (code) => {
    // Anything still open here would have kept the process alive: name it instead of hanging.
    const open = process.getActiveResourcesInfo().filter((r) => !['TTYWrap', 'PipeWrap', 'FSReqCallback'].includes(r));
    if (open.length > 0) console.error(`note: handles still open after cleanup: ${open.join(', ')}`);
    process.exit(code);
  },
  (error: unknown) => {
    console.error(`load test failed: ${(error as Error)?.stack ?? error}`);
    process.exit(1);
  },
);
