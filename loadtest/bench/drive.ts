/**
 * One measured run: the client driver (loadtest/bench/driver.ts) against running servers, its
 * marks answered with snapshots of every process and counter, and the figures shaped into a
 * scenario's report. The server's runs and the raw turn's go through here alike.
 */
import { figures, Meter, PHASES, type PhaseName, type Snapshot, topStatements } from './measure.js';
import type { DriverConfig, DriverResult, FromDriver } from './messages.js';
import { startTsChild, type Proc } from './processes.js';
import type { ScenarioReport } from './report.js';
import { sleep } from '../../test/support/wait.js';

/** Runs the driver over IPC: answers its marks with `go` after `onMark`, resolves with its result. */
function converse(proc: Proc, first: object, onMark: (message: FromDriver) => Promise<void>): Promise<DriverResult> {
  return new Promise<DriverResult>((resolve, reject) => {
    proc.child.on('message', (message: FromDriver) => {
      if (message.type === 'result') resolve(message.result);
      else if (message.type === 'failed') reject(new Error(`${proc.name} failed: ${message.error}`));
      else onMark(message).then(() => proc.child.send({ type: 'go' }), reject);
    });
    proc.child.once('exit', (code) => reject(new Error(`${proc.name} exited (${code}) without a result\n${proc.output().slice(-3000)}`)));
    proc.child.send(first);
  });
}

export interface Driven {
  result: DriverResult;
  before: Snapshot;
  after: Snapshot;
  /** Every process measured: the servers (or the raw turn's parts), the simulator, the driver. */
  procs: Proc[];
}

/** One measured run of the driver against running `servers` (the simulator among them). */
export async function drive(root: string, meter: Meter, servers: Proc[], config: DriverConfig, onIdleStep?: (sockets: number) => void): Promise<Driven> {
  const driver = startTsChild('driver', 'driver', 'loadtest/bench/driver.ts', root, 1_048_576);
  const procs = [...servers, driver];
  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  const result = await converse(driver, { type: 'run', config }, async (message) => {
    if (message.type === 'mark' && message.name === 'start') before = await meter.snapshot(procs);
    else if (message.type === 'mark' && message.name === 'end') after = await meter.snapshot(procs);
    else if (message.type === 'idle-step') onIdleStep?.(message.sockets);
  });
  await driver.stop();
  if (!before || !after) throw new Error('the driver ended without marking its window');
  return { result, before, after, procs };
}

/**
 * Re-reads the window's transaction count once the servers have stopped. A Postgres backend adds
 * its transactions to pg_stat_database when it has been idle for a while (up to 10 s) or when it
 * exits: read at the window's end, the count misses most of the window's.
 */
export async function settleTransactions(meter: Meter, run: Driven): Promise<void> {
  await sleep(Meter.settleMs);
  run.after.transactions = (await meter.snapshot([])).transactions;
}

/** A scenario's report from one measured run: per-process CPU and memory, per-turn counters, latencies, checks. */
export function scenarioReport(scenario: string, topology: string, run: Driven, options: Record<string, unknown>): ScenarioReport {
  const { result, before, after } = run;
  const procs = figures(before, after, run.procs);
  const perTurn = (x: number | undefined) => (x === undefined || result.turns === 0 ? null : x / result.turns);
  const window = result.windowS;
  const processes = procs.map((p) => ({ ...p, cpu_pct: (p.cpuS / window) * 100, cpu_ms_per_turn: result.turns ? (p.cpuS * 1000) / result.turns : null }));
  const serverCpu = procs.filter((p) => p.kind === 'server' || p.kind === 'postgres' || p.kind === 'redis').reduce((s, p) => s + p.cpuS, 0);
  const delta = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : b - a);
  return {
    scenario,
    topology,
    options,
    window_s: window,
    turns: result.turns,
    turns_per_s: result.turns / window,
    events: result.events,
    events_per_s: result.events / window,
    events_per_turn: result.turns ? result.events / result.turns : 0,
    mean_event_chars: result.meanEventChars,
    sockets: result.sockets,
    processes,
    server_cpu_ms_per_turn: result.turns ? (serverCpu * 1000) / result.turns : null,
    statements_per_turn: perTurn(delta(before.statements, after.statements)),
    round_trips_per_turn: perTurn(delta(before.topLevel, after.topLevel)),
    top_statements: topStatements(before, after, result.turns),
    most_sent_statements: topStatements(before, after, result.turns, { count: 6, by: 'calls_per_turn', sentOnly: true }),
    transaction_control_per_turn: perTurn(delta(before.transactionControl, after.transactionControl)),
    transactions_per_turn: perTurn(delta(before.transactions, after.transactions)),
    pool_statements_per_turn: perTurn(after.poolStatements - before.poolStatements),
    latency_ms: result.latencyMs,
    phases_ms: phaseMeans(before, after),
    checks: result.checks,
    passed: result.checks.every((c) => c.ok === c.total) && result.problemCount === 0,
    problems: result.problems,
  };
}

/** Mean ms per turn of each phase the workers time (job created to claimed, claimed to the model's first text, claimed to the attempt's end) in the window. */
function phaseMeans(before: Snapshot, after: Snapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const phase of Object.keys(PHASES) as PhaseName[]) {
    const count = after.phases[phase].count - before.phases[phase].count;
    if (count > 0) out[phase] = ((after.phases[phase].sum - before.phases[phase].sum) * 1000) / count;
  }
  return out;
}
