import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTurnQueue, type TurnContext, type TurnJob, type TurnProcessor, type TurnQueue } from '../queue/index.js';
import { REDIS_URL, uniquePrefix, testRedis } from './support/database.js';
import { clusterConnections, startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';
import { Gate, sleep, waitFor, within } from './support/wait.js';
import { CLUSTER_TURN_QUEUE_PARTITIONS } from '../config/redis-config.js';
import { partitionOf, turnQueueNames } from '../queue/turn-partitions.js';

/** `cluster`: BullMQ on a throwaway Redis Cluster, turns over the cluster's default number of queues. */
export type QueueBackend = 'inline' | 'bullmq' | 'cluster';

interface Ctx {
  cluster?: ThrowawayRedisCluster;
  queues: TurnQueue[];
  prefixes: string[];
  /** Opened before closing, so no test leaves close() waiting on a job it stopped watching. */
  gates: Gate[];
}

interface Call {
  job: TurnJob;
  ctx: TurnContext;
  at: number;
}

/** Deadline for one queue call (an enqueue, a worker start, a close). */
const OP_MS = 10_000;

/** A job of a new thread, or of `threadId`. */
function job(label: string, threadId = `t_${randomBytes(6).toString('base64url')}`): TurnJob {
  return { runId: `run_${label}_${randomBytes(6).toString('base64url')}`, threadId };
}

/**
 * The TurnQueue contract (queue/turn-queue.ts), run against every implementation with the same
 * assertions (queue.inline.test.ts, queue.bullmq.test.ts).
 */
export function queueSuite(backend: QueueBackend): void {
  const test = suite<Ctx>(`turn queue (${backend})`);

  /** Each test makes its own queue (a fresh prefix under BullMQ), closed after the test. */
  function open(ctx: Ctx): TurnQueue {
    let queue: TurnQueue;
    if (backend === 'bullmq') {
      const prefix = uniquePrefix();
      ctx.prefixes.push(prefix);
      queue = createTurnQueue({ kind: 'bullmq', redis: testRedis(prefix), onError: () => {} });
    } else if (backend === 'cluster') {
      // The cluster's keys go with it when the suite ends.
      queue = createTurnQueue({ kind: 'bullmq', redis: clusterConnections(ctx.cluster!, uniquePrefix()), partitions: CLUSTER_TURN_QUEUE_PARTITIONS, onError: () => {} });
    } else {
      queue = createTurnQueue({ kind: 'inline' });
    }
    ctx.queues.push(queue);
    return queue;
  }

  function gate(ctx: Ctx): Gate {
    const g = new Gate();
    ctx.gates.push(g);
    return g;
  }

  function enqueue(queue: TurnQueue, turn: TurnJob, options?: { wake?: boolean }): Promise<void> {
    return within(queue.enqueue(turn, options), OP_MS, `enqueue ${turn.runId}`);
  }

  function start(queue: TurnQueue, processor: TurnProcessor, concurrency: number): Promise<void> {
    return within(queue.startWorker(processor, concurrency), OP_MS, 'startWorker');
  }

  const runIds = (calls: Call[]) => calls.map((c) => c.job.runId);

  if (backend === 'cluster') {
    test('the partitions\' queues are spread evenly over the masters, and a thread always maps to the same one', async (ctx) => {
      const names = turnQueueNames(CLUSTER_TURN_QUEUE_PARTITIONS, true);
      const perMaster = new Map<number, number>();
      for (const name of names) {
        const { port } = await ctx.cluster!.masterOf(name);
        perMaster.set(port, (perMaster.get(port) ?? 0) + 1);
      }
      assert.equal([...perMaster.values()], [2, 2, 2], `queues per master: ${JSON.stringify([...perMaster])}`);
      const threads = Array.from({ length: 600 }, (_, i) => `th_${i}`);
      const counts = new Array<number>(names.length).fill(0);
      for (const thread of threads) {
        const partition = partitionOf(thread, names.length);
        assert.is(partitionOf(thread, names.length), partition);
        counts[partition]!++;
      }
      assert.ok(counts.every((n) => n > 60 && n < 140), `600 threads over 6 partitions: ${counts}`);
    });

    test('a slot freed by one partition\'s turn is used by another partition whose Worker was holding all it could', async (ctx) => {
      const queue = open(ctx);
      /** A job on a thread of partition `partition`. */
      const on = (label: string, partition: number): TurnJob => {
        let i = 0;
        while (partitionOf(`th_${label}_${i}`, CLUSTER_TURN_QUEUE_PARTITIONS) !== partition) i++;
        return job(label, `th_${label}_${i}`);
      };
      const [a1, a2, a3, b1, c1] = [on('a1', 0), on('a2', 0), on('a3', 0), on('b1', 1), on('c1', 2)];
      const gates = new Map([a1, a2, b1, c1].map((j) => [j.runId, gate(ctx)]));
      const started: string[] = [];
      await start(
        queue,
        async (turn) => {
          started.push(turn.runId);
          await gates.get(turn.runId)?.promise;
        },
        3,
      );
      for (const j of [a1, b1, c1]) await enqueue(queue, j);
      await waitFor(() => [a1, b1, c1].every((j) => started.includes(j.runId)), OP_MS, 'three turns running: the process is full');
      // Partition 0's Worker takes a2 and holds it waiting: it now has all it may hold.
      await enqueue(queue, a2);
      await sleep(300); // a threshold to pass: a2 is fetched and waits for a slot
      assert.not.ok(started.includes(a2.runId), 'a2 waits while the process is full');
      gates.get(b1.runId)!.open();
      await waitFor(() => started.includes(a2.runId), OP_MS, 'a2 runs in the slot b1 left');
      gates.get(c1.runId)!.open(); // a slot is free now, with a1 and a2 still running
      await enqueue(queue, a3);
      await waitFor(() => started.includes(a3.runId), OP_MS, 'a3 of partition 0 runs in the free slot while a1 and a2 still run');
      gates.get(a1.runId)!.open();
      gates.get(a2.runId)!.open();
    });

    test('a full process stops fetching: a second process started later gets jobs to run', async (ctx) => {
      // Two worker processes sharing one deployment's queues (same prefix).
      const prefix = uniquePrefix();
      const first = createTurnQueue({ kind: 'bullmq', redis: clusterConnections(ctx.cluster!, prefix), partitions: CLUSTER_TURN_QUEUE_PARTITIONS, onError: () => {} });
      const second = createTurnQueue({ kind: 'bullmq', redis: clusterConnections(ctx.cluster!, prefix), partitions: CLUSTER_TURN_QUEUE_PARTITIONS, onError: () => {} });
      ctx.queues.push(first, second);
      const hold = gate(ctx);
      const running = { first: 0, second: 0 };
      const jobs = Array.from({ length: 12 }, (_, i) => job(`h${i}`));
      for (const j of jobs) await enqueue(first, j);
      await start(first, async () => {
        running.first++;
        await hold.promise;
      }, 2);
      await waitFor(() => running.first === 2, OP_MS, 'the first process running 2');
      // Without the process bound on fetching, its 6 partitions' workers (2 each) would hold all 12.
      await start(second, async () => {
        running.second++;
        await hold.promise;
      }, 2);
      await waitFor(() => running.second === 2, OP_MS, () => `the second process running 2 (running ${JSON.stringify(running)})`);
      assert.is(running.first, 2, 'the first still runs only 2');
      hold.open();
    });

    test.before(async (ctx) => {
      ctx.cluster = await startThrowawayRedisCluster();
    });
    test.after(async (ctx) => {
      await ctx.cluster?.close();
    });
  }

  test.before.each((ctx) => {
    ctx.queues = [];
    ctx.prefixes = [];
    ctx.gates = [];
  });
  test.after.each(async (ctx) => {
    for (const g of ctx.gates) g.open();
    await within(Promise.all(ctx.queues.map((q) => q.close())), 20_000, 'closing the queues');
    if (ctx.prefixes.length > 0) {
      // BullMQ leaves its keys behind (failed jobs, ids, meta): remove this test's.
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      redis.on('error', () => {});
      try {
        for (const prefix of ctx.prefixes) {
          const keys: string[] = [];
          let cursor = '0';
          do {
            const [next, batch] = await within(redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000), OP_MS, 'SCAN');
            cursor = next;
            keys.push(...batch);
          } while (cursor !== '0');
          if (keys.length > 0) await within(redis.del(...keys), OP_MS, 'DEL');
        }
      } finally {
        await redis.quit();
      }
    }
  });

  test('a job enqueued before or after startWorker reaches the processor with its data', async (ctx) => {
    const queue = open(ctx);
    const calls: Call[] = [];
    const before = job('before');
    const after = job('after');
    await enqueue(queue, before);
    await start(queue, async (turn, turnCtx) => void calls.push({ job: turn, ctx: turnCtx, at: Date.now() }), 1);
    await enqueue(queue, after);
    await waitFor(() => calls.length >= 2, OP_MS, `both jobs (got ${JSON.stringify(runIds(calls))})`);
    assert.equal(calls.map((c) => c.job), [before, after], 'each job once, with its data, in order');
    for (const call of calls) {
      assert.instance(call.ctx.signal, AbortSignal);
      assert.not.ok(call.ctx.signal.aborted);
    }
  });

  test('enqueuing a run twice while it is pending gives one call; wake: true adds one', async (ctx) => {
    const queue = open(ctx);
    const calls: Call[] = [];
    // Jobs of one thread: with several partitions (a cluster) order holds within a thread's queue.
    const once = job('once');
    const woken = job('woken', once.threadId);
    const sentinel = job('sentinel', once.threadId);
    await enqueue(queue, once);
    await enqueue(queue, once);
    await enqueue(queue, woken);
    await enqueue(queue, woken, { wake: true });
    await enqueue(queue, sentinel);
    await start(queue, async (turn, turnCtx) => void calls.push({ job: turn, ctx: turnCtx, at: Date.now() }), 1);
    // One at a time, first in first out: once the sentinel ran, everything enqueued before it has.
    await waitFor(() => runIds(calls).includes(sentinel.runId), OP_MS, 'the sentinel job');
    assert.equal(runIds(calls), [once.runId, woken.runId, woken.runId, sentinel.runId]);
  });

  test('while a run\'s job is running, enqueuing it again is ignored but wake: true adds a call', async (ctx) => {
    const queue = open(ctx);
    const calls: Call[] = [];
    const running = job('running');
    const sentinel = job('sentinel', running.threadId);
    const firstCall = gate(ctx);
    await start(
      queue,
      async (turn, turnCtx) => {
        calls.push({ job: turn, ctx: turnCtx, at: Date.now() });
        if (calls.length === 1) await firstCall.promise;
      },
      1,
    );
    await enqueue(queue, running);
    await waitFor(() => calls.length === 1, OP_MS, 'the first call');
    await enqueue(queue, running);
    await enqueue(queue, running, { wake: true });
    await enqueue(queue, sentinel);
    firstCall.open();
    await waitFor(() => runIds(calls).includes(sentinel.runId), OP_MS, 'the sentinel job');
    assert.equal(runIds(calls), [running.runId, running.runId, sentinel.runId], 'the plain repeat was ignored, the wake-up ran');
  });

  test('concurrency is bounded: 6 jobs at concurrency 2 never run more than 2 at once, and all complete', async (ctx) => {
    const queue = open(ctx);
    const jobs = Array.from({ length: 6 }, (_, i) => job(`c${i}`));
    const gates = new Map(jobs.map((j) => [j.runId, gate(ctx)]));
    const active = new Set<string>();
    const completed: string[] = [];
    let maxActive = 0;
    for (const j of jobs) await enqueue(queue, j);
    await start(
      queue,
      async (turn) => {
        active.add(turn.runId);
        maxActive = Math.max(maxActive, active.size);
        await gates.get(turn.runId)!.promise;
        active.delete(turn.runId);
        completed.push(turn.runId);
      },
      2,
    );
    // Release one running job at a time; each time, the queue refills up to the limit.
    while (completed.length < jobs.length) {
      const remaining = jobs.length - completed.length;
      await waitFor(() => active.size === Math.min(2, remaining), OP_MS, `${Math.min(2, remaining)} running (have ${active.size})`);
      assert.ok(maxActive <= 2, `at most 2 at once, saw ${maxActive}`);
      const [oldest] = active;
      const done = completed.length;
      gates.get(oldest!)!.open();
      await waitFor(() => completed.length === done + 1, OP_MS, `${oldest} to complete`);
    }
    assert.equal(maxActive, 2, 'never more than 2 ran at once, and 2 did');
    assert.equal([...completed].sort(), jobs.map((j) => j.runId).sort(), 'all 6 completed, each once');
  });

  test('a processor that throws is retried with exponential backoff', async (ctx) => {
    const queue = open(ctx);
    const calls: Call[] = [];
    const flaky = job('flaky');
    const sentinel = job('sentinel');
    await start(
      queue,
      async (turn, turnCtx) => {
        calls.push({ job: turn, ctx: turnCtx, at: Date.now() });
        const attempts = calls.filter((c) => c.job.runId === flaky.runId).length;
        if (turn.runId === flaky.runId && attempts < 3) throw new Error(`attempt ${attempts} fails`);
      },
      1,
    );
    const enqueuedAt = Date.now();
    await enqueue(queue, flaky);
    // Backoff 1 s, then 2 s: about 3 s in all.
    await waitFor(() => calls.length >= 3, 15_000, `three attempts (got ${calls.length})`);
    assert.equal(calls.map((c) => c.job), [flaky, flaky, flaky], 'the same job, called again');
    const [first, second, third] = calls.map((c) => c.at) as [number, number, number];
    assert.ok(first >= enqueuedAt);
    assert.ok(second - first >= 950, `first retry after ~1 s backoff, was ${second - first} ms`);
    assert.ok(third - second >= 1_950, `second retry after ~2 s backoff (exponential), was ${third - second} ms`);
    assert.ok(third - first < 10_000, `retries are not stretched out: ${third - first} ms`);
    // It succeeded on the third attempt: nothing more is scheduled for it.
    await enqueue(queue, sentinel);
    await waitFor(() => runIds(calls).includes(sentinel.runId), OP_MS, 'the sentinel job');
    assert.equal(runIds(calls), [flaky.runId, flaky.runId, flaky.runId, sentinel.runId]);
  });

  test('close() waits for an active job to finish and is safe to call twice', async (ctx) => {
    const queue = open(ctx);
    const calls: Call[] = [];
    const log: string[] = [];
    const slow = job('slow');
    const release = gate(ctx);
    await start(
      queue,
      async (turn, turnCtx) => {
        calls.push({ job: turn, ctx: turnCtx, at: Date.now() });
        await release.promise;
        log.push(turnCtx.signal.aborted ? 'processor done (aborted)' : 'processor done');
      },
      1,
    );
    await enqueue(queue, slow);
    await waitFor(() => calls.length === 1, OP_MS, 'the job to start');
    const closing = queue.close().then(() => void log.push('closed'));
    // Not synchronisation: the order asserted below holds however long this is; it only gives a
    // close() that does not wait the chance to resolve before the job ends.
    await sleep(300);
    assert.equal(log, [], 'close() has not resolved while the job runs');
    release.open();
    await within(closing, OP_MS, 'close()');
    assert.equal(log, ['processor done', 'closed'], 'the job finished (unaborted, within the grace) before close() resolved');
    await within(Promise.all([queue.close(), queue.close()]), OP_MS, 'close() again, twice at once');
  });

  if (backend === 'inline') {
    test('the inline queue refuses enqueue after close', async (ctx) => {
      const queue = open(ctx);
      await within(queue.close(), OP_MS, 'close()');
      const outcome = await within(
        queue.enqueue(job('late')).then(() => 'accepted', (error: unknown) => error),
        OP_MS,
        'enqueue after close',
      );
      assert.instance(outcome, Error, 'enqueue after close rejects');
      assert.match((outcome as Error).message, /closed/);
    });
  }

  test.run();
}
