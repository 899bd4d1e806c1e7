/**
 * Deltas by time, through the real event log (group commit, Postgres, the broker): a run's text is
 * cut into message_delta events on the process's 50 ms clock, so the number of deltas a turn
 * stores follows from the time its text flows, not from how long the writes take. Text is pushed
 * as a model streams it, on a fixed schedule laid on the clock: five chunks in every 50 ms window.
 * The first chunk goes at once; every window after it is one delta (cut at its tick, or taken by
 * the run's last write). So W windows of text make W deltas, with the log as it is and behind a
 * wrapper that delays every append by more than two ticks. Also: runs that stream at once store
 * one tick's deltas in one batch, and a write that fails loses and reorders nothing.
 */
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppendItem } from '../db/events.repository.js';
import type { EventLog } from '../events/event-log.js';
import { DeltaCoalescer } from '../workers/delta-coalescer.js';
import { RunEmitter } from '../workers/run-emitter.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { startHandRun, type HandRun } from './support/hand-run.js';
import { sleep, within } from './support/wait.js';

const test = suite<StackCtx>('deltas by time');
// The node's worker must not touch the runs these tests drive by hand.
useStack(test, { env: { RUN_STALE_MS: '600000' } });
const silent = pino({ level: 'silent' });
const TICK = 50;


/** The log, with every append held back `delayMs` first; `fail(n)` makes the n-th append (from 1) fail instead. */
function slowed(log: EventLog, delayMs: number, failAt?: number): EventLog & { appends: AppendItem[][] } {
  const appends: AppendItem[][] = [];
  return {
    appends,
    async append(items) {
      appends.push([...items]);
      const n = appends.length;
      await sleep(delayMs);
      if (n === failAt) throw new Error('the store refused this write (test)');
      return log.append(items);
    },
    publish: (threadId, events) => log.publish(threadId, events),
    close: async () => {},
  };
}

/** The next tick of the 50 ms clock at least `marginMs` from now. */
function nextTick(marginMs = 20): number {
  return Math.ceil((performance.now() + marginMs) / TICK) * TICK;
}

/**
 * Pushes `windows` windows of text, as a model would: five chunks per 50 ms window from the tick
 * `start`, 5, 15, 25, 35 and 45 ms into it. Returns the text pushed; stops at a push that throws
 * (the text it carried is kept by the coalescer) and returns the error with the text.
 */
async function stream(text: DeltaCoalescer, label: string, start: number, windows: number): Promise<{ pushed: string; error?: unknown }> {
  let pushed = '';
  for (let w = 0; w < windows; w++) {
    for (let c = 0; c < 5; c++) {
      const wait = start + w * TICK + 5 + c * 10 - performance.now();
      if (wait > 0) await sleep(wait); // the model's pace
      const chunk = `${label}${w}.${c} `;
      pushed += chunk;
      try {
        text.push(chunk);
      } catch (error) {
        return { pushed, error };
      }
    }
  }
  return { pushed };
}

/** The run's last write, as the turn loop makes it: what is pending, the answer, agent_completed. */
async function finish(emitter: RunEmitter, text: DeltaCoalescer, run: HandRun): Promise<void> {
  await text.settle().catch(() => undefined);
  await emitter.complete(
    { status: 'completed', message: { id: run.messageId, role: 'assistant', content: text.text, run_id: run.runId } },
    { status: 'completed', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } },
    { message: { id: run.messageId, role: 'assistant', content: text.text }, before: text.takePending() },
  );
}

async function storedDeltas(ctx: StackCtx, run: HandRun): Promise<string[]> {
  const rows = await ctx.node.db.selectFrom('events').select(['seq', 'type', 'payload']).where('thread_id', '=', run.threadId).orderBy('seq').execute();
  return rows.filter((row) => row.type === 'message_delta').map((row) => (row.payload as { delta: string }).delta);
}

for (const delayMs of [0, 120]) {
  test(`10 windows of text make 10 deltas, appends delayed ${delayMs} ms`, async (ctx) => {
    const run = await startHandRun(ctx, `timed-${delayMs}`);
    const log = slowed(ctx.node.events, delayMs);
    const emitter = new RunEmitter(ctx.node.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log });
    const text = new DeltaCoalescer(emitter, run.messageId);
    const { pushed } = await within(stream(text, 'w', nextTick(), 10), 10_000, 'the stream');
    await within(finish(emitter, text, run), 10_000, 'the last write');
    const deltas = await storedDeltas(ctx, run);
    assert.is(deltas.join(''), pushed, 'every chunk stored once, in order');
    assert.is(deltas.length, 10, `one delta per window: ${JSON.stringify(deltas)}`);
    assert.is(deltas[0], 'w0.0 ', 'the first chunk went at once, alone');
    if (delayMs > 2 * TICK) {
      // The ticks that came while a write was in flight were written together when it returned.
      assert.ok(log.appends.some((items) => items.length > 1 && items.every((item) => item.draft.type === 'message_delta')), 'deltas of several ticks in one write');
    }
  });
}

test('runs streaming at once, each started at its own moment, store each tick\'s deltas in one batch', async (ctx) => {
  const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => startHandRun(ctx, `crowd-${i}`)));
  const log = ctx.node.events;
  const emitters = runs.map((run) => new RunEmitter(ctx.node.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log }));
  const texts = runs.map((run, i) => new DeltaCoalescer(emitters[i]!, run.messageId));
  const batchesBefore = log.stats.batches;
  const start = nextTick();
  // Run i begins 7i ms after the tick: left to themselves, their writes would fall at six different moments of every window.
  const streamed = await within(Promise.all(texts.map((text, i) => sleep(7 * i).then(() => stream(text, `r${i}-`, start, 12)))), 10_000, 'the streams');
  const streamBatches = log.stats.batches - batchesBefore;
  await Promise.all(runs.map((run, i) => finish(emitters[i]!, texts[i]!, run)));
  for (const [i, run] of runs.entries()) {
    const deltas = await storedDeltas(ctx, run);
    assert.is(deltas.join(''), streamed[i]!.pushed, `run ${i}: every chunk once, in order`);
  }
  // Six first deltas (each at once) and one batch per tick after them (ticks 2..11 of the 12
  // windows); unaligned, the 6 runs would write 6 batches per tick (66 or so).
  assert.ok(streamBatches <= 6 + 11, `batches while streaming: ${streamBatches}`);
  console.log(`[delta-timing] 6 runs x 12 windows: ${streamBatches} batches while streaming`);
});

test('a write that fails loses and reorders nothing: its deltas and the ones cut meanwhile go with the last write', async (ctx) => {
  const run = await startHandRun(ctx, 'failing');
  // The second append fails after 120 ms: by then two more ticks have cut their deltas.
  const log = slowed(ctx.node.events, 120, 2);
  const emitter = new RunEmitter(ctx.node.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log });
  const text = new DeltaCoalescer(emitter, run.messageId);
  const { pushed, error } = await within(stream(text, 'f', nextTick(), 12), 10_000, 'the stream');
  assert.match(String(error), /refused this write/, 'the failed write is thrown by a later push');
  await text.settle().then(() => assert.unreachable("settle() resolved"), (settled: unknown) => assert.match(String(settled), /refused this write/));
  await within(finish(emitter, text, run), 10_000, 'the last write');
  const deltas = await storedDeltas(ctx, run);
  assert.is(deltas.join(''), pushed, 'every chunk pushed, the one that met the failure too, stored once and in order');
  assert.is(text.text, pushed);
  assert.ok(deltas.length > 2, `the failed write's ticks kept their own deltas: ${JSON.stringify(deltas)}`);
});

test.run();
