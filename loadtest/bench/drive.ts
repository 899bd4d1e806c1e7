/**
 * One measured run: the client driver (loadtest/bench/driver.ts) against running servers, its
 * marks answered with snapshots of every process and counter, and the figures shaped into a
 * scenario's report. The server's runs and the raw turn's go through here alike.
 */
import { figures, Meter, PHASES, type PhaseName, type Snapshot, topStatements } from './measure.js';
import type { DriverConfig, DriverResult, FromDriver } from './messages.js';
import { startTsChild, type Proc } from './processes.js';
import type { RedisFigures, ScenarioReport } from './report.js';
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
export async function drive(root: string, meter: Meter, servers: Proc[], config: DriverConfig, onIdleStep?: (sockets: number) => Promise<void>): Promise<Driven> {
  const driver = startTsChild('driver', 'driver', 'loadtest/bench/driver.ts', root, 1_048_576);
  const procs = [...servers, driver];
  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  const result = await converse(driver, { type: 'run', config }, async (message) => {
    if (message.type === 'mark' && message.name === 'start') before = await meter.snapshot(procs);
    else if (message.type === 'mark' && message.name === 'end') after = await meter.snapshot(procs);
    else if (message.type === 'idle-step') await onIdleStep?.(message.sockets);
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
  const settled = await meter.snapshot([]);
  run.after.transactions = settled.transactions;
  run.after.rowsWritten = settled.rowsWritten;
}

/**
 * Commands per Redis node over the window (INFO total_commands_processed; the meter's own two INFO
 * calls per node per snapshot are taken off), and per turn and per event over the nodes that serve
 * clients: the single node, or the cluster's masters (a replica processes its master's replication
 * stream, shown apart). The commands run most, per turn, summed over those nodes.
 */
export function redisFigures(before: Snapshot, after: Snapshot, windowS: number, turns: number, events: number, delivered: number): RedisFigures {
  const nodes = [...after.redis].map(([name, b]) => {
    const a = before.redis.get(name);
    const commands = a ? b.commands - a.commands - 1 : NaN;
    const role = name === 'redis' ? 'single' : name.startsWith('redis-m') ? 'master' : 'replica';
    return { name, role, commands, commands_per_s: commands / windowS, commands_per_turn: turns ? commands / turns : null };
  });
  const serving = nodes.filter((n) => n.role !== 'replica');
  const commands = serving.reduce((sum, n) => sum + n.commands, 0);
  const byCommand = new Map<string, number>();
  for (const [name, b] of after.redis) {
    if (name.startsWith('redis-r')) continue;
    const a = before.redis.get(name);
    for (const [command, calls] of b.byCommand) byCommand.set(command, (byCommand.get(command) ?? 0) + calls - (a?.byCommand.get(command) ?? 0) - (command === 'info' ? 1 : 0));
  }
  const top = [...byCommand].filter(([, calls]) => calls > 0).sort((x, y) => y[1] - x[1]).slice(0, 10);
  return {
    nodes,
    commands_per_s: commands / windowS,
    commands_per_turn: turns ? commands / turns : null,
    commands_per_event: events ? commands / events : null,
    commands_per_delivered: delivered ? commands / delivered : null,
    top_commands: top.map(([command, calls]) => ({ command, per_turn: turns ? calls / turns : null, per_s: calls / windowS })),
  };
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
    rows_written_per_turn: perTurn(delta(before.rowsWritten, after.rowsWritten)),
    redis: redisFigures(before, after, window, result.turns, result.events, result.eventsReceived),
    client_reads: Object.fromEntries(Object.entries(after.clientReads).map(([key, n]) => [key, n - (before.clientReads[key] ?? 0)]).filter(([, n]) => (n as number) > 0)),
    gateway_spread: result.spread,
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
