/**
 * Postgres stopped and started again (a throwaway cluster on its own port; `pg_ctl stop -m fast`
 * ends every session with 57P01, then the server is gone) under a running node. Redis is the
 * shared server with the suite's own prefix. What must hold:
 *  - while Postgres is down, requests that need it are refused as retryable (`unavailable` with
 *    retry_after_ms) on the socket and over REST (503), /ready is 503, the process stays up and
 *    sockets stay open;
 *  - once it is back, without restarting anything, the same socket sends and a turn completes;
 *  - a turn cut by the outage mid-stream is not left `running` forever: within a bounded time it
 *    is completed or failed in the database, the client sees exactly one agent_completed for it,
 *    seq stays gap-free and equal to the log, and the text rebuilds (reset rule on a takeover).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type StackCtx } from './support/fixture.js';
import { useRestartStack } from './support/restart-fixture.js';
import { RestClient, type RestResponse } from './support/rest-client.js';
import type { Frame } from './support/client.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from './support/throwaway.js';
import { assertClientMatchesLog, assertRunRebuilds, ready, readyBecomes } from './support/run-checks.js';
import { sleep } from './support/wait.js';
import { isConnectionError } from '../errors/backing-services.js';

interface Ctx extends StackCtx {
  pg: ThrowawayPostgres;
}

const test = suite<Ctx>('postgres restart');

/** How stale a running run's heartbeat may get before another worker takes it over or fails it. */
const RUN_STALE_MS = 5_000;

useRestartStack(test, 'pg', {
  server: startThrowawayPostgres,
  stack: (pg) => ({
    // The cluster is this suite's alone: its `postgres` database will do, and goes with it.
    database: { url: pg.url, name: 'postgres', drop: async () => {} },
    env: { RUN_STALE_MS: String(RUN_STALE_MS) },
  }),
});

function assertUnavailable(frame: Frame, what: string): void {
  assert.is(frame.type, 'error', `${what}: expected an error frame, got ${JSON.stringify(frame)}`);
  assert.is(frame.payload.code, 'unavailable', `${what}: ${JSON.stringify(frame.payload)}`);
  assert.type(frame.payload.retry_after_ms, 'number', `${what}: says when to retry`);
  assert.ok(frame.payload.retry_after_ms > 0, `${what}: retry_after_ms > 0`);
}

function assertRest503(res: RestResponse, what: string): void {
  // rest() has checked the body against the error schema and the code against the status.
  assert.is(res.status, 503, `${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  assert.is(res.body.code, 'unavailable', what);
  assert.type(res.body.retry_after_ms, 'number', `${what}: says when to retry`);
}

/** The run's status, or undefined while the database does not answer. */
async function runStatus(ctx: Ctx, runId: string): Promise<string | undefined> {
  try {
    const row = await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', runId).executeTakeFirstOrThrow();
    return row.status;
  } catch (error) {
    if (isConnectionError(error) || /shutting down|starting up|terminating connection/i.test(String((error as Error).message))) return undefined;
    throw error;
  }
}

test('Postgres down: requests are refused as retryable, /ready is 503, sockets stay open; once back, the same socket runs a turn', async (ctx) => {
  const client = await connect(ctx, 'patient');
  const token = await ctx.stack.token('patient');
  const rest = new RestClient(ctx.base, token);
  const first = await client.request('message.send', { content: 'Hello there [[words:5]]' });
  assert.is(first.type, 'ack');
  const threadId = first.payload.thread_id as string;
  await client.completed(first.payload.run_id);

  await ctx.pg.stop('fast');

  // On the socket.
  assertUnavailable(await client.request('message.send', { content: 'Anyone there?', thread_id: threadId }, 15_000), 'message.send on a thread');
  assertUnavailable(await client.request('message.send', { content: 'A new thread?' }, 15_000), 'message.send without a thread');
  assertUnavailable(await client.request('thread.subscribe', { thread_id: threadId, after_seq: 0 }, 15_000), 'thread.subscribe');
  assertUnavailable(await client.request('thread.history', { thread_id: threadId }, 15_000), 'thread.history');
  assertUnavailable(await client.request('thread.list', {}, 15_000), 'thread.list');
  // Over REST.
  assertRest503(await rest.get('/v1/threads'), 'GET /v1/threads');
  assertRest503(await rest.get(`/v1/threads/${threadId}/history`), 'GET history');
  assertRest503(await rest.post(`/v1/threads/${threadId}/messages`, { content: 'Anyone there over REST?' }), 'POST messages');
  assertRest503(await rest.get(`/v1/threads/${threadId}/events?after_seq=0`), 'GET events');
  const whileDown = await ready(ctx.base);
  assert.is(whileDown.status, 503, `/ready while Postgres is down: ${JSON.stringify(whileDown.body)}`);
  // The socket is fine, and a new one can still connect (the handshake needs no database).
  assert.is((await client.request('ping', {})).type, 'pong');
  assert.is(client.closeCode, undefined, 'the socket stayed open');
  const other = await connect(ctx, 'patient');
  assert.is((await other.request('ping', {})).type, 'pong');

  await ctx.pg.start();
  await readyBecomes(ctx.base, 200, 15_000);

  // The same socket, nothing restarted.
  const again = await client.request('message.send', { content: 'Back again? [[words:20]]', thread_id: threadId });
  assert.is(again.type, 'ack', JSON.stringify(again.payload));
  const done = await client.completed(again.payload.run_id, 20_000);
  assert.is(done.payload.status, 'completed');
  const events = await assertClientMatchesLog(ctx.stack.db, client, threadId);
  assertRunRebuilds(events, again.payload.run_id);
  const sub = await client.request('thread.subscribe', { thread_id: threadId, after_seq: events.length });
  assert.is(sub.type, 'ack', JSON.stringify(sub.payload));
  assert.is(sub.payload.last_seq, events.length);
  const page = await rest.get(`/v1/threads/${threadId}/history`);
  assert.is(page.status, 200);
  assert.is(page.body.events.length, events.length);
  assert.is(client.closeCode, undefined);
});

/**
 * Stops Postgres (`fast`) once a slow turn is streaming, starts it again after `outageMs`, and
 * checks that the run ends (completed or failed) within 60 s with everything a client relies on
 * intact. Returns the run's final agent_completed.
 */
async function outageMidTurn(ctx: Ctx, user: string, outageMs: number): Promise<Frame> {
  const client = await connect(ctx, user);
  const ack = await client.request('message.send', { content: 'A long and slow answer please [[words:150]] [[delay:20]]' });
  assert.is(ack.type, 'ack', JSON.stringify(ack.payload));
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');

  const stoppedAt = Date.now();
  await ctx.pg.stop('fast');
  await sleep(Math.max(0, stoppedAt + outageMs - Date.now())); // the outage's length is the point
  await ctx.pg.start();
  const restartedAt = Date.now();

  // Nothing leaves the run `running` for good: within a bounded time it is finished in the log.
  let status: string | undefined;
  const deadline = restartedAt + 60_000;
  for (;;) {
    status = await runStatus(ctx, run_id);
    if (status === 'completed' || status === 'failed') break;
    assert.ok(Date.now() < deadline, `run ${run_id} is still '${status}' 60 s after Postgres came back`);
    await sleep(250); // polling: the loop's deadline is the assertion above
  }
  const done = await client.completed(run_id, Math.max(5_000, deadline - Date.now()));
  assert.is(done.payload.status, status, 'the client sees the stored outcome');
  if (status === 'failed') assert.ok(done.payload.error?.code, 'a failed run says why');
  assert.is(client.closeCode, undefined, 'the socket stayed open');
  const events = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
  const { restarts } = assertRunRebuilds(events, run_id);
  const stored = await ctx.stack.db.selectFrom('runs').select(['status', 'attempt']).where('id', '=', run_id).executeTakeFirstOrThrow();
  if (restarts.length > 0) assert.is(stored.attempt, restarts[restarts.length - 1]!.payload.attempt, 'the final attempt announced itself');

  // The thread is not stuck: the next turn runs, and the cut run never completes a second time.
  const next = await client.request('message.send', { content: 'And now? [[words:10]]', thread_id });
  assert.is(next.type, 'ack', JSON.stringify(next.payload));
  assert.is((await client.completed(next.payload.run_id, 30_000)).payload.status, 'completed');
  const all = await assertClientMatchesLog(ctx.stack.db, client, thread_id);
  assert.is(all.filter((e) => e.type === 'agent_completed' && e.payload.run_id === run_id).length, 1, 'still one agent_completed for the cut run');
  assertRunRebuilds(all, next.payload.run_id);
  const unfinished = await ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('status', 'in', ['queued', 'running']).execute();
  assert.equal(unfinished, [], 'no run is left queued or running');
  return done;
}

// A run's writes are retried through an outage for RUN_STALE_MS; a run whose heartbeat is older
// than that is taken over by a sweeper (or failed). Three outage lengths, three paths:

test('Postgres stopped mid-turn for 3 s (shorter than the write retries): the turn pauses and completes', async (ctx) => {
  const done = await outageMidTurn(ctx, 'paused', 3_000);
  assert.is(done.payload.status, 'completed', `a short outage pauses the turn: ${JSON.stringify(done.payload.error ?? {})}`);
});

test('Postgres stopped mid-turn for 8 s (past the write retries): the run ends completed or failed, one agent_completed, the text rebuilds', async (ctx) => {
  await outageMidTurn(ctx, 'given-up', 8_000);
});

test('Postgres stopped mid-turn for 20 s (past the queue\'s own retries): the stale run is taken over or failed', async (ctx) => {
  await outageMidTurn(ctx, 'abandoned', 20_000);
});

test.run();
