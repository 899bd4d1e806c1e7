// @run-alone: asserts resume latency under a 1,000-socket storm and is CPU-heavy (scripts/test.mjs runs it after the others, with nothing beside it)
/**
 * A reconnect storm (Redis backend): 1,000 sockets follow 20 threads whose turns are streaming,
 * all of them drop at once, reconnect and resume with `thread.subscribe { after_seq }`. Every
 * follower must end up with exactly the thread's events 1..last_seq: no gap, no duplicate, one
 * agent_completed. Prints the time from the drop until every follower has its agent_completed,
 * and the p50/p95 of thread.subscribe → ack on the resume.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Frame, TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { within } from './support/wait.js';

const THREADS = 20;
const FOLLOWERS_PER_THREAD = 50;
const BATCH = 100;
const PROMPT = 'Storm of words [[words:150]] [[delay:10]]';

const test = suite<StackCtx>('reconnect storm (redis)');
useStack(test, { backend: 'redis', env: { WORKER_CONCURRENCY: String(THREADS) } });

interface Follower {
  user: string;
  thread: number;
  client: TestClient;
  /** What the first connection had received when it was dropped. */
  firstEvents: Frame[];
  lastSeen: number;
  second?: TestClient;
  ackMs?: number;
  ackLastSeq?: number;
  doneAt?: number;
}

/** Runs `fn` over `items` in consecutive batches of `size`, each batch concurrently. */
async function inBatches<T>(items: T[], size: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map((item, i) => fn(item, start + i)));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function seqs(events: Frame[]): number[] {
  return events.map((e) => e.payload.seq);
}

test('1,000 followers dropped mid-stream all resume with exactly their missing events', async (ctx) => {
  const started = Date.now();
  const users = Array.from({ length: THREADS }, (_, t) => `storm-${t}`);

  // 1. Connect every follower first (batches of 100), so the turns are young when they subscribe.
  const followers: Follower[] = [];
  const slots = Array.from({ length: THREADS * FOLLOWERS_PER_THREAD }, (_, i) => i % THREADS);
  await within(
    inBatches(slots, BATCH, async (thread) => {
      const client = await connect(ctx, users[thread]!);
      followers.push({ user: users[thread]!, thread, client, firstEvents: [], lastSeen: 0 });
    }),
    25_000,
    'connecting 1,000 followers',
  );
  assert.equal(followers.length, THREADS * FOLLOWERS_PER_THREAD);
  const connectedAt = Date.now();

  // 2. One starter per thread (each user owns one thread) starts a slow turn.
  const starters = await within(Promise.all(users.map((user) => connect(ctx, user))), 10_000, 'starters');
  const runs = await within(
    Promise.all(starters.map(async (starter) => {
      const ack = await starter.request('message.send', { content: PROMPT }, 10_000);
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      return { thread_id: ack.payload.thread_id as string, run_id: ack.payload.run_id as string };
    })),
    15_000,
    'starting 20 turns',
  );

  // 3. Followers subscribe from the start of the thread.
  await within(
    inBatches(followers, BATCH, async (f) => {
      const sub = await f.client.request('thread.subscribe', { thread_id: runs[f.thread]!.thread_id, after_seq: 0 }, 15_000);
      assert.equal(sub.type, 'ack', JSON.stringify(sub));
    }),
    25_000,
    'first subscriptions',
  );
  // 4. Every follower has seen some deltas of its thread's run.
  await within(
    Promise.all(followers.map((f) => f.client.until(
      () => f.client.frames.some((fr) => fr.type === 'message_delta' && fr.payload.run_id === runs[f.thread]!.run_id),
      20_000,
      'a first delta',
    ))),
    25_000,
    'every follower seeing deltas',
  );

  // 5. Drop all 1,000 at once; snapshot what each had seen.
  const stillStreaming = starters.filter((s, t) => !s.frames.some((fr) => fr.type === 'agent_completed' && fr.payload.run_id === runs[t]!.run_id)).length;
  for (const f of followers) f.client.close();
  const droppedAt = Date.now();
  for (const f of followers) {
    f.firstEvents = f.client.events(runs[f.thread]!.thread_id).slice();
    f.lastSeen = f.firstEvents.length ? f.firstEvents[f.firstEvents.length - 1]!.payload.seq : 0;
  }

  // 6. Reconnect all (batches of 100) and resume from the last seq each saw; the wait for
  //    agent_completed starts as soon as the ack is in.
  const completions: Array<Promise<void>> = [];
  await within(
    inBatches(followers, BATCH, async (f) => {
      const { thread_id, run_id } = runs[f.thread]!;
      const second = await connect(ctx, f.user);
      f.second = second;
      const sentAt = performance.now();
      const sub = await second.request('thread.subscribe', { thread_id, after_seq: f.lastSeen }, 15_000);
      f.ackMs = performance.now() - sentAt;
      assert.equal(sub.type, 'ack', JSON.stringify(sub));
      f.ackLastSeq = sub.payload.last_seq;
      completions.push(second.completed(run_id, 30_000).then(() => void (f.doneAt = Date.now())));
    }),
    30_000,
    'reconnecting and resubscribing 1,000 followers',
  );
  await within(Promise.all(completions), 30_000, 'every follower receiving agent_completed');
  const allResumedMs = Math.max(...followers.map((f) => f.doneAt!)) - droppedAt;

  // 7. Ground truth from the database once every turn is over.
  await within(Promise.all(starters.map((s, t) => s.completed(runs[t]!.run_id, 20_000))), 20_000, 'starters completing');
  const rows = await ctx.stack.db
    .selectFrom('threads')
    .select(['id', 'last_seq'])
    .where('id', 'in', runs.map((r) => r.thread_id))
    .execute();
  const lastSeq = new Map(rows.map((r) => [r.id, Number(r.last_seq)]));
  assert.equal(lastSeq.size, THREADS);

  // Every follower is checked; the failures are reported together (the first few in full).
  const failures: string[] = [];
  const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  for (const f of followers) {
    const { thread_id, run_id } = runs[f.thread]!;
    const n = lastSeq.get(thread_id)!;
    const resumed = f.second!.events(thread_id);
    const all = [...f.firstEvents, ...resumed];
    const completed = all.filter((e) => e.type === 'agent_completed');
    const problems = [
      f.client.invalid.length || f.second!.invalid.length ? `invalid frames: ${[...f.client.invalid, ...f.second!.invalid][0]}` : '',
      f.second!.errors.length ? `socket errors: ${f.second!.errors.join('; ')}` : '',
      f.lastSeen < 1 ? 'saw no events before the drop' : '',
      !same(seqs(f.firstEvents), range(1, f.lastSeen)) ? `first connection not 1..${f.lastSeen}: ${seqs(f.firstEvents)}` : '',
      f.ackLastSeq! < f.lastSeen ? `ack last_seq ${f.ackLastSeq} < after_seq` : '',
      !same(seqs(resumed), range(f.lastSeen + 1, n)) ? `resumed not ${f.lastSeen + 1}..${n}: ${seqs(resumed)}` : '',
      !same(seqs(all), range(1, n)) ? `combined not 1..${n}` : '',
      completed.length !== 1 || completed[0]!.payload.run_id !== run_id ? `${completed.length} agent_completed` : '',
    ].filter(Boolean);
    if (problems.length) failures.push(`${f.user} after_seq=${f.lastSeen} last_seq=${n} ack.last_seq=${f.ackLastSeq}: ${problems.join(' | ')}`);
  }

  const acks = followers.map((f) => f.ackMs!).sort((a, b) => a - b);
  const resumedFrom = followers.map((f) => f.lastSeen);
  const finals = [...lastSeq.values()];
  console.log(
    `[reconnect-storm] followers=${followers.length} threads=${THREADS} ` +
      `connect=${connectedAt - started}ms streaming-at-drop=${stillStreaming}/${THREADS} ` +
      `after_seq min/max=${Math.min(...resumedFrom)}/${Math.max(...resumedFrom)} last_seq min/max=${Math.min(...finals)}/${Math.max(...finals)} ` +
      `drop→all-completed=${allResumedMs}ms resume-ack p50=${percentile(acks, 50).toFixed(1)}ms ` +
      `p95=${percentile(acks, 95).toFixed(1)}ms max=${acks[acks.length - 1]!.toFixed(1)}ms total=${Date.now() - started}ms`,
  );
  assert.equal(failures.length, 0, `${failures.length}/${followers.length} followers wrong:\n${failures.slice(0, 5).join('\n')}`);
});

test.run();
