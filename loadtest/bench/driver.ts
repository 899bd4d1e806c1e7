/**
 * The benchmark's client process: it speaks the protocol to the gateways over real sockets and
 * nothing else (no server code runs here). The orchestrator (loadtest/bench.ts) sends one `run`
 * message with the scenario; the driver tells it when the measured window starts and ends (and,
 * for idle sockets, at each step) and waits for `go`, so CPU and statement counters are read at
 * exactly those moments; then it sends its result and exits.
 */
import pg from 'pg';
import { signToken } from '../../server/auth.js';
import { summarize } from '../stats.js';
import { BenchSocket, type ThreadTrack } from './socket.js';
import type { Check, DriverConfig, DriverResult, ToDriver } from './messages.js';
import { sleep } from '../../test/support/wait.js';

let config: DriverConfig;
const waiting: Array<() => void> = [];

function send(message: object): void {
  process.send!(message);
}

/** Tells the orchestrator and waits for its `go`. */
function mark(message: object): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    send(message);
  });
}

const token = (user: string) => signToken(config.secret, { sub: user, workspace: 'bench', ttlSeconds: 6 * 3600 });
const gatewayFor = (i: number) => config.gateways[i % config.gateways.length]!;
const deadline = () => config.startedAt + config.deadlineS * 1000;

/** Opens sockets `limit` at a time (a connect burst larger than the listen backlog only measures SYN retries). */
async function connectAll(sockets: Array<{ socket: BenchSocket; url: string }>, limit = 200): Promise<string[]> {
  const failures: string[] = [];
  const tokens = new Map<string, string>();
  for (const { socket } of sockets) if (!tokens.has(socket.user)) tokens.set(socket.user, await token(socket.user));
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, sockets.length) }, async () => {
    while (next < sockets.length) {
      const { socket, url } = sockets[next++]!;
      await socket.connect(url, tokens.get(socket.user)!).catch((error) => failures.push(`${socket.user}: ${(error as Error).message}`));
    }
  }));
  return failures;
}

function content(label: string, words: number, delayMs: number): string {
  return `${label} [[words:${words}]][[delay:${delayMs}]]`;
}

async function lastSeqs(threadIds: string[]): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: config.databaseUrl });
  await client.connect();
  try {
    const table = config.threadsTable === 'raw_threads' ? 'raw_threads' : 'threads';
    const { rows } = await client.query(`select id, last_seq from ${table} where id = any($1)`, [threadIds]);
    return new Map(rows.map((r) => [r.id as string, Number(r.last_seq)]));
  } finally {
    await client.end();
  }
}

/** Per-socket delivery checks against the stored log: every seq 1..last_seq exactly once, in order; one agent_completed per run; deltas join to the final message. */
function deliveryChecks(followers: Array<{ tracks: ThreadTrack[]; threadId: string }>, stored: Map<string, number>, runsOf: (threadId: string) => number): Check[] {
  let ordered = 0;
  let runsOk = 0;
  let joinsOk = 0;
  let completedOk = 0;
  let runs = 0;
  for (const { tracks, threadId } of followers) {
    const seqs = tracks.flatMap((t) => t.seqs);
    const last = stored.get(threadId) ?? -1;
    if (seqs.length === last && seqs.every((seq, i) => seq === i + 1)) ordered++;
    const merged = new Map<string, { completed: number; deltas: string[]; content?: string; status?: string }>();
    for (const track of tracks) {
      for (const [runId, run] of track.runs) {
        const m = merged.get(runId) ?? { completed: 0, deltas: [] };
        m.completed += run.completed;
        m.deltas.push(...run.deltas);
        m.content ??= run.content;
        m.status ??= run.status;
        merged.set(runId, m);
      }
    }
    runs += runsOf(threadId);
    for (const run of merged.values()) {
      if (run.completed === 1) runsOk++;
      if (run.content !== undefined && run.deltas.join('') === run.content) joinsOk++;
      if (run.status === 'completed') completedOk++;
    }
  }
  return [
    { name: 'sockets got every stored event of their thread once, in order (seq 1..last_seq, no gap)', ok: ordered, total: followers.length },
    { name: 'exactly one agent_completed per run, on every socket', ok: runsOk, total: runs },
    { name: 'deltas joined == final message, on every socket', ok: joinsOk, total: runs },
    { name: 'runs ended completed', ok: completedOk, total: runs },
  ];
}

function meanChars(sockets: BenchSocket[]): number {
  const events = sockets.reduce((sum, s) => sum + [...s.threads.values()].reduce((a, t) => a + t.seqs.length, 0), 0);
  return events ? sockets.reduce((sum, s) => sum + s.eventChars, 0) / events : 0;
}

function problemsOf(sockets: BenchSocket[]): string[] {
  return sockets.flatMap((s) => s.problems.map((p) => `${s.user}: ${p}`));
}

const SOAK_THREAD_TURNS = 10;

async function createThread(owner: BenchSocket): Promise<string> {
  const ack = await owner.request('thread.create', {});
  const id = ack.payload?.thread?.id ?? ack.payload?.id;
  if (ack.type !== 'ack' || typeof id !== 'string') throw new Error(`thread.create: ${JSON.stringify(ack.payload)}`);
  return id as string;
}

/**
 * Closed-loop turns (N clients, each its own user and thread), with M more sockets following each
 * thread. With `turnsPerThread`, a client's turns go to one thread after another (all made, and
 * followed, before the window), that many on each.
 */
async function turns(options: { paced?: { ratePerS: number; durationS: number } } = {}): Promise<DriverResult> {
  const n = config.clients;
  const m = config.followers;
  // Warm-up, not measured: pools, JIT, the worker's first job.
  const warm = Array.from({ length: Math.min(10, n) }, (_, i) => new BenchSocket(`bench-warm-${i}`));
  await connectAll(warm.map((socket, i) => ({ socket, url: gatewayFor(i) })));
  await Promise.all(warm.map(async (socket) => {
    const ack = await socket.request('message.send', { thread_id: await createThread(socket), content: content('warm up', 5, 0) });
    if (ack.type !== 'ack') throw new Error(`warm-up: ${JSON.stringify(ack.payload)}`);
    await socket.until(() => socket.track(ack.payload.thread_id).runs.get(ack.payload.run_id)?.completed === 1, deadline(), 'warm-up turn');
  }));
  await Promise.all(warm.map((s) => s.close()));

  const owners = Array.from({ length: n }, (_, i) => new BenchSocket(`bench-user-${i}`));
  const followers = owners.flatMap((owner, i) => Array.from({ length: m }, () => ({ owner: i, socket: new BenchSocket(owner.user) })));
  const connectStarted = performance.now();
  const failures = await connectAll([
    ...owners.map((socket, i) => ({ socket, url: gatewayFor(i) })),
    ...followers.map((f, j) => ({ socket: f.socket, url: gatewayFor(f.owner + 1 + j) })),
  ]);
  const connectS = (performance.now() - connectStarted) / 1000;
  if (failures.length > 0) throw new Error(`${failures.length} sockets did not connect, e.g. ${failures[0]}`);
  // Fan-out across gateways: a thread whose sockets sit on more than one gateway is published to each.
  const gatewaysOf = (i: number) => new Set([gatewayFor(i), ...followers.map((f, j) => (f.owner === i ? gatewayFor(f.owner + 1 + j) : undefined)).filter((g) => g !== undefined)]);
  const spread = {
    gateways: config.gateways.length,
    threads_on_several_gateways: m > 0 ? owners.filter((_, i) => gatewaysOf(i).size > 1).length : 0,
    clients: n,
  };
  const perThread = options.paced ? SOAK_THREAD_TURNS : config.turnsPerThread ?? config.turns;
  // A soak makes its threads as it goes (it has no number of turns); otherwise all are made now.
  const threadsEach = options.paced ? 1 : Math.ceil(config.turns / perThread);
  const subscribe = async (socket: BenchSocket, threadId: string) => {
    const ack = await socket.request('thread.subscribe', { thread_id: threadId, after_seq: 0 });
    if (ack.type !== 'ack') throw new Error(`thread.subscribe: ${JSON.stringify(ack.payload)}`);
  };
  /** A new thread of client i, its followers subscribed. */
  const newThread = async (i: number) => {
    const id = await createThread(owners[i]!);
    await Promise.all(followers.filter((f) => f.owner === i).map((f) => subscribe(f.socket, id)));
    return id;
  };
  const ownerThreads = await Promise.all(owners.map(async (_, i) => {
    const ids: string[] = [];
    for (let t = 0; t < threadsEach; t++) ids.push(await newThread(i));
    return ids;
  }));
  const threadIds = ownerThreads.map((ids) => ids[0]!);

  const acks: number[] = [];
  const firstDeltas: number[] = [];
  const fullTurns: number[] = [];
  let permits: (() => Promise<void>) | undefined;
  let stopAt = Infinity;
  if (options.paced) {
    // Open loop at a fixed rate: a turn may start every 1/rate s, whoever is free takes it.
    const interval = 1000 / options.paced.ratePerS;
    let nextAt = performance.now();
    permits = async () => {
      const at = nextAt;
      nextAt = Math.max(nextAt + interval, performance.now());
      await sleep(at - performance.now()); // the pace is the point
    };
  }
  await mark({ type: 'mark', name: 'start' });
  const started = performance.now();
  if (options.paced) stopAt = started + options.paced.durationS * 1000;
  else if (config.windowLimitS) stopAt = started + config.windowLimitS * 1000;
  const runsOnThread = new Map<string, number>();
  // A soak moves each client to a new thread every SOAK_THREAD_TURNS turns: it looks for leaks,
  // not for what one ever longer conversation costs.
  await Promise.all(owners.map(async (owner, i) => {
    let threadId = threadIds[i]!;
    for (let turn = 1; options.paced ? performance.now() < stopAt : turn <= config.turns; turn++) {
      if (permits) await permits();
      if (performance.now() >= stopAt) break;
      if (turn > 1 && (turn - 1) % perThread === 0) {
        const next = (turn - 1) / perThread;
        if (next >= ownerThreads[i]!.length) ownerThreads[i]!.push(await newThread(i));
        threadId = ownerThreads[i]![next]!;
      }
      const sent = performance.now();
      const ack = await owner.request('message.send', { thread_id: threadId, content: content(`Bench turn ${turn} of client ${i}: tell me something.`, config.words, config.delayMs) });
      if (ack.type !== 'ack') throw new Error(`message.send: ${JSON.stringify(ack.payload)}`);
      acks.push(ack.ms);
      runsOnThread.set(threadId, (runsOnThread.get(threadId) ?? 0) + 1);
      const runId = ack.payload.run_id as string;
      await owner.until(() => owner.track(threadId).runs.get(runId)?.completed === 1, deadline(), `agent_completed of ${runId}`);
      const run = owner.track(threadId).runs.get(runId)!;
      if (run.firstDeltaAt !== undefined) firstDeltas.push(run.firstDeltaAt - sent);
      fullTurns.push(run.completedAt! - sent);
    }
  }));
  const windowS = (performance.now() - started) / 1000;
  await mark({ type: 'mark', name: 'end' });

  // Followers finish receiving the last turns; then a window in which late duplicates would show.
  const stored = await lastSeqs(ownerThreads.flat());
  const followed = (f: (typeof followers)[number]) => ownerThreads[f.owner]!;
  await Promise.all(followers.map((f) => f.socket.until(() => followed(f).every((id) => f.socket.track(id).seqs.length >= (stored.get(id) ?? 0)), Date.now() + 10_000, 'the whole thread').catch(() => {})));
  await sleep(300);
  const all = [...owners, ...followers.map((f) => f.socket)];
  const completedTurns = fullTurns.length;
  const events = [...stored.values()].reduce((a, b) => a + b, 0);
  const checks: Check[] = [
    { name: 'turns completed', ok: completedTurns, total: options.paced || config.windowLimitS ? acks.length : n * config.turns },
    // Every socket of a thread (its owner and its followers) must have seen every run of it.
    ...deliveryChecks([
      ...owners.flatMap((o, i) => ownerThreads[i]!.map((id) => ({ tracks: [o.track(id)], threadId: id }))),
      ...followers.flatMap((f) => followed(f).map((id) => ({ tracks: [f.socket.track(id)], threadId: id }))),
    ], stored, (threadId) => runsOnThread.get(threadId) ?? 0),
  ];
  checks.push({ name: 'no error frames, socket errors or unexpected closes', ok: all.length - new Set(problemsOf(all).map((p) => p.split(':')[0])).size, total: all.length });
  const problems = problemsOf(all);
  await Promise.all(all.map((s) => s.close()));
  return {
    scenario: options.paced ? 'paced' : 'turns',
    windowS,
    connectS,
    sockets: all.length,
    turns: completedTurns,
    events,
    eventsReceived: all.reduce((sum, s) => sum + [...s.threads.values()].reduce((a, t) => a + t.seqs.length, 0), 0),
    meanEventChars: meanChars(all),
    latencyMs: {
      ack: summarize(acks),
      first_delta: summarize(firstDeltas),
      full_turn: summarize(fullTurns),
      fanout_lag: summarize(all.flatMap((s) => s.lags)),
    },
    checks,
    spread,
    problems: problems.slice(0, 20),
    problemCount: problems.length,
  };
}

/** K authenticated idle sockets, opened in steps; the orchestrator reads the gateways' RSS at each. */
async function idle(): Promise<DriverResult> {
  const total = config.idle.sockets;
  const step = Math.max(1, config.idle.step);
  const sockets: BenchSocket[] = [];
  const failures: string[] = [];
  await mark({ type: 'mark', name: 'start' });
  await mark({ type: 'idle-step', sockets: 0 });
  const started = performance.now();
  while (sockets.length < total) {
    // One user (and token) per socket unless told to share: per-user state is then counted per socket.
    const user = (k: number) => `bench-idle-${config.idle.users > 0 ? k % config.idle.users : k}`;
    const batch = Array.from({ length: Math.min(step, total - sockets.length) }, (_, i) => new BenchSocket(user(sockets.length + i)));
    const offset = sockets.length;
    failures.push(...(await connectAll(batch.map((socket, i) => ({ socket, url: gatewayFor(offset + i) })))));
    sockets.push(...batch);
    await mark({ type: 'idle-step', sockets: sockets.length - failures.length });
  }
  const windowS = (performance.now() - started) / 1000;
  await mark({ type: 'mark', name: 'end' });
  const problems = [...failures, ...problemsOf(sockets)];
  const open = sockets.filter((s) => s.closeCode === undefined).length;
  for (let i = 0; i < sockets.length; i += 500) await Promise.all(sockets.slice(i, i + 500).map((s) => s.close()));
  return {
    scenario: 'idle',
    windowS,
    connectS: windowS,
    sockets: sockets.length,
    turns: 0,
    events: 0,
    eventsReceived: 0,
    meanEventChars: 0,
    latencyMs: {},
    checks: [{ name: 'idle sockets open and authenticated at the end', ok: open, total }],
    problems: problems.slice(0, 20),
    problemCount: problems.length,
  };
}

/** F streaming threads with S followers in all; every follower dropped at once, all resume with after_seq. */
async function storm(): Promise<DriverResult> {
  const f = config.storm.threads;
  const s = config.storm.followers;
  const owners = Array.from({ length: f }, (_, i) => new BenchSocket(`bench-storm-${i}`));
  let failures = await connectAll(owners.map((socket, i) => ({ socket, url: gatewayFor(i) })));
  const threadIds = await Promise.all(owners.map(async (owner) => {
    const ack = await owner.request('thread.create', {});
    return (ack.payload?.thread?.id ?? ack.payload?.id) as string;
  }));
  const followers = Array.from({ length: s }, (_, j) => ({ thread: j % f, sockets: [new BenchSocket(`bench-storm-${j % f}`)] }));
  // Each follower resumes on gatewayFor(j), the other gateway where there are two: a gateway that
  // has not been following the thread must replay and then forward it as live.
  failures = failures.concat(await connectAll(followers.map((x, j) => ({ socket: x.sockets[0]!, url: gatewayFor(j + 1) }))));
  const resumedElsewhere = followers.filter((_, j) => gatewayFor(j) !== gatewayFor(j + 1)).length;
  if (failures.length > 0) throw new Error(`${failures.length} sockets did not connect, e.g. ${failures[0]}`);
  await Promise.all(followers.map((x) => x.sockets[0]!.request('thread.subscribe', { thread_id: threadIds[x.thread], after_seq: 0 })));
  const runIds = await Promise.all(owners.map(async (owner, i) => {
    const ack = await owner.request('message.send', { thread_id: threadIds[i], content: content(`Storm thread ${i}`, config.storm.words, config.storm.delayMs) });
    if (ack.type !== 'ack') throw new Error(`message.send: ${JSON.stringify(ack.payload)}`);
    return ack.payload.run_id as string;
  }));
  // Every follower is mid-stream: it has text of its thread's run, and the run is not over.
  await Promise.all(followers.map((x) => x.sockets[0]!.until(() => (x.sockets[0]!.track(threadIds[x.thread]!).runs.get(runIds[x.thread]!)?.deltas.length ?? 0) > 0, deadline(), 'the first delta')));
  const midStream = followers.filter((x) => !x.sockets[0]!.track(threadIds[x.thread]!).runs.get(runIds[x.thread]!)?.completed).length;

  await mark({ type: 'mark', name: 'start' });
  // What each thread had reached when the followers dropped: a resumed follower has caught up once it has all of it.
  const reached = owners.map((o, i) => o.track(threadIds[i]!).seqs.at(-1) ?? 0);
  const dropAt = performance.now();
  for (const x of followers) x.sockets[0]!.drop();
  const tokens = await Promise.all(owners.map((o) => token(o.user)));
  const resumeAcks: number[] = [];
  const caughtUpAt: number[] = [];
  const doneAt: number[] = [];
  const resumeFailures: string[] = [];
  await Promise.all(followers.map(async (x, j) => {
    const old = x.sockets[0]!;
    const seen = old.track(threadIds[x.thread]!).seqs;
    const socket = new BenchSocket(old.user);
    x.sockets.push(socket);
    try {
      await socket.connect(gatewayFor(j), tokens[x.thread]!);
      const ack = await socket.request('thread.subscribe', { thread_id: threadIds[x.thread], after_seq: seen[seen.length - 1] ?? 0 });
      if (ack.type !== 'ack') throw new Error(`resume: ${JSON.stringify(ack.payload)}`);
      resumeAcks.push(ack.ms);
      const before = old.track(threadIds[x.thread]!).seqs.length;
      await socket.until(() => before + socket.track(threadIds[x.thread]!).seqs.length >= reached[x.thread]!, deadline(), 'the events missed while dropped');
      caughtUpAt.push(performance.now() - dropAt);
      await socket.until(() => (socket.track(threadIds[x.thread]!).runs.get(runIds[x.thread]!)?.completed ?? 0) + (old.track(threadIds[x.thread]!).runs.get(runIds[x.thread]!)?.completed ?? 0) >= 1, deadline(), 'agent_completed after the resume');
      doneAt.push(performance.now() - dropAt);
    } catch (error) {
      resumeFailures.push(`${old.user}: ${(error as Error).message}`);
    }
  }));
  const windowS = (performance.now() - dropAt) / 1000;
  await mark({ type: 'mark', name: 'end' });
  await Promise.all(owners.map((o, i) => o.until(() => o.track(threadIds[i]!).runs.get(runIds[i]!)?.completed === 1, deadline(), 'the owner\'s agent_completed').catch(() => {})));
  await sleep(300); // a window in which late duplicates would show
  const stored = await lastSeqs(threadIds);
  const delivery = deliveryChecks(followers.map((x) => ({ tracks: x.sockets.map((sock) => sock.track(threadIds[x.thread]!)), threadId: threadIds[x.thread]! })), stored, () => 1);
  const all = [...owners, ...followers.flatMap((x) => x.sockets)];
  const problems = [...resumeFailures, ...problemsOf(all)];
  const events = [...stored.values()].reduce((a, b) => a + b, 0);
  await Promise.all(all.map((sock) => sock.close()));
  return {
    scenario: 'storm',
    windowS,
    connectS: 0,
    sockets: all.length,
    turns: f,
    events,
    eventsReceived: all.reduce((sum, sock) => sum + [...sock.threads.values()].reduce((a, t) => a + t.seqs.length, 0), 0),
    meanEventChars: meanChars(all),
    latencyMs: {
      resume_ack: summarize(resumeAcks),
      'resumed and caught up (from the drop)': summarize(caughtUpAt),
      'resumed and complete (agent_completed)': summarize(doneAt),
      // Replayed events count from their original timestamps: this is how stale the resumed view was.
      'fanout_lag after resume': summarize(followers.flatMap((x) => x.sockets[1]?.lags ?? [])),
    },
    spread: { gateways: config.gateways.length, followers_resumed_on_another_gateway: resumedElsewhere, followers: s },
    storm: {
      dropped: s,
      midStream,
      allCaughtUpS: caughtUpAt.length === s ? Math.max(...caughtUpAt) / 1000 : NaN,
      allCompleteS: doneAt.length === s ? Math.max(...doneAt) / 1000 : NaN,
    },
    checks: [
      { name: 'followers resumed and complete', ok: doneAt.length, total: s },
      ...delivery,
      { name: 'no resume failures', ok: s - resumeFailures.length, total: s },
    ],
    problems: problems.slice(0, 20),
    problemCount: problems.length,
  };
}

process.on('message', (message: ToDriver) => {
  if (message.type === 'go') {
    waiting.shift()?.();
    return;
  }
  if (message.type !== 'run') return;
  config = message.config;
  const scenario = config.scenario === 'idle' ? idle() : config.scenario === 'storm' ? storm() : turns(config.scenario === 'paced' ? { paced: config.paced } : {});
  scenario.then(
    (result) => send({ type: 'result', result }),
    (error: unknown) => send({ type: 'failed', error: String((error as Error)?.stack ?? error) }),
  ).finally(() => process.disconnect());
});
