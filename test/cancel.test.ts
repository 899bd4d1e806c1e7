/**
 * Cancelling runs: queued (cancelled at once, never starts), mid-stream (ends cancelled keeping the
 * partial text), a model call that hangs (the AbortSignal reaches the openai request), by someone
 * else (refused, the run completes), after the end (conflict), and the same over REST
 * POST /v1/runs/:id/cancel. Runs on Postgres + Redis + BullMQ and on the embedded backend.
 */
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import type { TestClient, Frame } from './support/client.js';
import { rest } from './support/rest-client.js';
import { connect, redisOnlyTest, useStack, type StackCtx as Ctx } from './support/fixture.js';
import { waitFor } from './support/wait.js';

function cancelSuite(backend: Backend): void {
  const test = suite<Ctx>(`cancel (${backend})`);

  const redisOnly = redisOnlyTest(test, backend);
  // A generous LLM timeout: a hanging model call must end by the cancel, not by the timeout.
  useStack(test, { backend, env: { LLM_TIMEOUT_MS: '60000' } });

  const unique = () => randomBytes(4).toString('hex');
  const runEvents = (client: TestClient, threadId: string, runId: string) =>
    client.events(threadId).filter((e) => e.payload.run_id === runId);
  const deltas = (client: TestClient, runId: string) =>
    client.frames.filter((f) => f.type === 'message_delta' && f.payload.run_id === runId);

  function assertGapless(events: Frame[], from = 1): void {
    assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + from), 'seq runs without gaps or duplicates');
  }

  /** Requests the simulator received whose latest message is the user message containing `marker`. */
  const simRequestsFor = (ctx: Ctx, marker: string) =>
    ctx.stack.sim.requests.filter((r) => {
      const last = r.body.messages?.at(-1);
      return last?.role === 'user' && typeof last.content === 'string' && last.content.includes(marker);
    });

  async function storedRun(ctx: Ctx, runId: string) {
    return ctx.stack.db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
  }

  test('a queued run cancelled: ack cancelled, agent_completed cancelled with empty content, it never starts; the run ahead completes', async (ctx) => {
    const client = await connect(ctx, 'queue-canceller');
    const thread = await client.request('thread.create', {});
    assert.equal(thread.type, 'ack', JSON.stringify(thread));
    const thread_id = thread.payload.id as string;
    const sub = await client.request('thread.subscribe', { thread_id, after_seq: 0 });
    assert.equal(sub.type, 'ack');

    // The first run streams for ~1 s, so the second waits queued behind it.
    const first = await client.request('message.send', { thread_id, content: 'Busy first [[words:40]] [[delay:25]]' });
    const markerB = `never-${unique()}`;
    const second = await client.request('message.send', { thread_id, content: `Second ${markerB} [[words:5]]` });
    assert.equal([first.type, second.type], ['ack', 'ack'], JSON.stringify([first, second]));
    const runA = first.payload.run_id as string;
    const runB = second.payload.run_id as string;

    const cancel = await client.request('run.cancel', { run_id: runB });
    assert.equal(cancel.type, 'ack', JSON.stringify(cancel));
    assert.equal(cancel.payload, { run_id: runB, status: 'cancelled' });
    const cancelledB = await client.completed(runB, 5_000);
    assert.equal(cancelledB.payload.status, 'cancelled');
    assert.equal(cancelledB.payload.message.content, '');
    assert.equal(cancelledB.payload.message.role, 'assistant');
    assert.not.ok(cancelledB.payload.error, 'a cancellation is not an error');

    const doneA = await client.completed(runA);
    assert.equal(doneA.payload.status, 'completed', JSON.stringify(doneA.payload));
    assert.ok(cancelledB.payload.seq < doneA.payload.seq, 'the queued run was cancelled at once, while the first still ran');
    const againB = await client.request('run.cancel', { run_id: runB });
    assert.equal(againB.type, 'error');
    assert.equal(againB.payload.code, 'conflict', 'a cancelled run cannot be cancelled again');

    // A later turn on the thread runs; by then the cancelled run would have started if it were going to.
    const third = await client.request('message.send', { thread_id, content: 'Third [[words:5]]' });
    const doneC = await client.completed(third.payload.run_id);
    assert.equal(doneC.payload.status, 'completed');
    assert.equal(runEvents(client, thread_id, runB).map((e) => e.type), ['message_created', 'agent_completed'], 'the cancelled run never started');
    assertGapless(client.events(thread_id));
    assert.equal(simRequestsFor(ctx, markerB), [], 'the model was never asked for the cancelled run');
    const storedB = await storedRun(ctx, runB);
    assert.equal(storedB.status, 'cancelled');
    assert.equal(storedB.started_at, null);
    assert.equal(storedB.attempt, 0, 'never claimed');
    const storedEventsB = await ctx.stack.db.selectFrom('events').select('type').where('run_id', '=', runB).orderBy('seq').execute();
    assert.equal(storedEventsB.map((e) => e.type), ['message_created', 'agent_completed']);
    assert.equal((await storedRun(ctx, runA)).status, 'completed');
  });

  test('a run cancelled mid-stream ends cancelled, keeping exactly the text streamed so far', async (ctx) => {
    const client = await connect(ctx, 'stream-canceller');
    const ack = await client.request('message.send', { content: 'Stream a long answer [[words:400]] [[delay:15]]' });
    const { thread_id, run_id } = ack.payload;
    await client.until(() => deltas(client, run_id).length >= 3, 10_000, 'three message_delta');

    const cancel = await client.request('run.cancel', { run_id });
    assert.equal(cancel.type, 'ack', JSON.stringify(cancel));
    assert.equal(cancel.payload, { run_id, status: 'cancelling' });
    const asked = performance.now();
    const done = await client.completed(run_id, 5_000);
    assert.ok(performance.now() - asked < 2_000, 'the stream stops promptly');
    assert.equal(done.payload.status, 'cancelled', JSON.stringify(done.payload));
    assert.not.ok(done.payload.error);

    const received = deltas(client, run_id);
    const partial = done.payload.message.content as string;
    assert.equal(received.map((d) => d.payload.delta).join(''), partial, 'the deltas received join to the final message');
    const echo = 'You said: Stream a long answer';
    assert.ok(partial.length > 0 && (partial.startsWith(echo) || echo.startsWith(partial)), `the start of the answer: ${partial}`);
    assert.ok(partial.split(' ').length < 400, 'the answer was cut short');

    // Time passes (another turn runs); nothing of the cancelled run arrives after its agent_completed.
    const next = await client.request('message.send', { thread_id, content: 'And now something short [[words:5]]' });
    const nextDone = await client.completed(next.payload.run_id);
    assert.equal(nextDone.payload.status, 'completed');
    const completedAt = client.frames.indexOf(done);
    assert.equal(
      client.frames.slice(completedAt + 1).filter((f) => f.payload?.run_id === run_id),
      [],
      'no event of the run after its agent_completed',
    );
    assertGapless(client.events(thread_id));
    assert.equal(runEvents(client, thread_id, run_id).filter((e) => e.type === 'agent_completed').length, 1);

    const run = await storedRun(ctx, run_id);
    assert.equal(run.status, 'cancelled');
    assert.ok(run.finished_at, 'finished_at is set');
    const message = await ctx.stack.db.selectFrom('messages').selectAll().where('id', '=', done.payload.message.id).executeTakeFirstOrThrow();
    assert.equal([message.role, message.content, message.run_id], ['assistant', partial, run_id], 'the partial text is stored');
    const stored = await ctx.stack.db.selectFrom('events').select(['seq', 'type']).where('run_id', '=', run_id).orderBy('seq').execute();
    assert.equal(stored.at(-1)!.type, 'agent_completed', 'agent_completed is the run\'s last stored event');
    assert.equal(stored.at(-1)!.seq, done.payload.seq);
    // The next turn's prompt carried the partial answer.
    const followUp = simRequestsFor(ctx, 'And now something short');
    assert.ok(followUp.length > 0);
    assert.ok(
      followUp[0]!.body.messages.some((m: any) => m.role === 'assistant' && typeof m.content === 'string' && m.content.includes(partial)),
      'the cancelled turn\'s partial text is part of the conversation',
    );
  });

  test('a run whose model call hangs is cancelled promptly: the abort reaches the openai request', async (ctx) => {
    const client = await connect(ctx, 'hang-canceller');
    const marker = `hang-${unique()}`;
    const ack = await client.request('message.send', { content: `Never answered ${marker} [[fault:hang]]` });
    const { run_id } = ack.payload;
    await client.next((f) => f.type === 'agent_thinking' && f.payload.run_id === run_id, 10_000);
    // Polling only observes: the request reached the simulator, which will never answer it.
    await waitFor(() => simRequestsFor(ctx, marker).length > 0, 10_000, 'the model request to reach the simulator');
    const cancel = await client.request('run.cancel', { run_id });
    assert.equal(cancel.payload, { run_id, status: 'cancelling' });
    const asked = performance.now();
    const done = await client.completed(run_id, 10_000);
    const took = performance.now() - asked;
    assert.ok(took < 3_000, `cancelled in ${Math.round(took)} ms, not by the 60 s LLM timeout`);
    assert.equal(done.payload.status, 'cancelled', JSON.stringify(done.payload));
    assert.equal(done.payload.message.content, '');
    assert.not.ok(done.payload.error);
    assert.equal((await storedRun(ctx, run_id)).status, 'cancelled');
    assert.equal(simRequestsFor(ctx, marker).length, 1, 'the request was not retried');
  });

  redisOnly('a run cancelled after its tool ran, while the follow-up answer streams, ends cancelled with the tool pair and the partial text', async (ctx) => {
    const client = await connect(ctx, 'tool-canceller');
    const ack = await client.request('message.send', { content: 'What time is it? [[delay:400]]' });
    const { thread_id, run_id } = ack.payload;
    await client.until(() => deltas(client, run_id).length >= 1, 10_000, 'the follow-up answer streaming');
    const cancel = await client.request('run.cancel', { run_id });
    assert.equal(cancel.payload, { run_id, status: 'cancelling' });
    const done = await client.completed(run_id, 5_000);
    assert.equal(done.payload.status, 'cancelled', JSON.stringify(done.payload));
    const events = runEvents(client, thread_id, run_id);
    assert.equal(events.filter((e) => e.type === 'tool_executing').length, 1);
    assert.equal(events.filter((e) => e.type === 'tool_completed').length, 1);
    const partial = done.payload.message.content as string;
    assert.equal(deltas(client, run_id).map((d) => d.payload.delta).join(''), partial);
    const echo = 'The get_current_time tool says';
    assert.ok(partial.length > 0 && (echo.startsWith(partial) || partial.startsWith(echo)), `the start of the answer: ${partial}`);
    assert.not.ok(partial.endsWith('.'), `cut short before the end of the answer: ${partial}`);
    const stored = await ctx.stack.db.selectFrom('messages').select(['role', 'content']).where('run_id', '=', run_id).orderBy('created_at').execute();
    assert.equal(stored.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant'], 'the tool call, its result and the partial answer are stored');
    assert.equal(stored.at(-1)!.content, partial);
    assert.equal((await storedRun(ctx, run_id)).status, 'cancelled');
  });

  redisOnly('another user or workspace cannot cancel a run: not_found, and the run completes', async (ctx) => {
    const owner = await connect(ctx, 'cancel-owner');
    const colleague = await connect(ctx, 'cancel-colleague');
    const stranger = await connect(ctx, 'cancel-owner', 'elsewhere');
    const ack = await owner.request('message.send', { content: 'Mine to cancel [[words:30]] [[delay:15]]' });
    const { run_id } = ack.payload;
    await owner.next((f) => f.type === 'agent_started' && f.payload.run_id === run_id, 10_000);
    for (const intruder of [colleague, stranger]) {
      const cancel = await intruder.request('run.cancel', { run_id });
      assert.equal(cancel.type, 'error', JSON.stringify(cancel));
      assert.ok(['not_found', 'forbidden'].includes(cancel.payload.code), cancel.payload.code);
      assert.equal(cancel.payload.code, 'not_found', 'no existence oracle: someone else\'s run looks missing');
    }
    const done = await owner.completed(run_id);
    assert.equal(done.payload.status, 'completed');
    assert.equal((await storedRun(ctx, run_id)).status, 'completed');
  });

  redisOnly('cancelling a finished run is a conflict; an unknown run is not_found', async (ctx) => {
    const client = await connect(ctx, 'late-canceller');
    const ack = await client.request('message.send', { content: 'Quick one [[words:3]]' });
    const { run_id } = ack.payload;
    const done = await client.completed(run_id);
    assert.equal(done.payload.status, 'completed');
    const cancel = await client.request('run.cancel', { run_id });
    assert.equal(cancel.type, 'error');
    assert.equal(cancel.payload.code, 'conflict');
    const unknown = await client.request('run.cancel', { run_id: 'run_doesnotexist' });
    assert.equal(unknown.payload.code, 'not_found');
    assert.equal((await storedRun(ctx, run_id)).status, 'completed', 'the refused cancel changed nothing');
    const events = await ctx.stack.db.selectFrom('events').select('type').where('run_id', '=', run_id).where('type', '=', 'agent_completed').execute();
    assert.equal(events.length, 1);
  });

  redisOnly('REST POST /v1/runs/:id/cancel: 200 cancelled / cancelling, 404 for others, 409 when finished, 401 without a token', async (ctx) => {
    const token = await ctx.stack.token('rest-canceller');
    const strangerToken = await ctx.stack.token('rest-stranger');
    const watcher = await connect(ctx, 'rest-canceller');

    const thread = await rest(ctx.base, 'POST', '/v1/threads', { token, body: {} });
    assert.equal(thread.status, 201, JSON.stringify(thread.body));
    const thread_id = thread.body.id as string;
    assert.equal((await watcher.request('thread.subscribe', { thread_id, after_seq: 0 })).type, 'ack');

    const a = await rest(ctx.base, 'POST', `/v1/threads/${thread_id}/messages`, { token, body: { content: 'REST first [[words:300]] [[delay:15]]' } });
    const b = await rest(ctx.base, 'POST', `/v1/threads/${thread_id}/messages`, { token, body: { content: 'REST second [[words:5]]' } });
    assert.equal([a.status, b.status], [202, 202], JSON.stringify([a.body, b.body]));
    const runA = a.body.run_id as string;
    const runB = b.body.run_id as string;

    // Queued: cancelled at once.
    const cancelB = await rest(ctx.base, 'POST', `/v1/runs/${runB}/cancel`, { token });
    assert.equal(cancelB.status, 200, JSON.stringify(cancelB.body));
    assert.equal(cancelB.body, { run_id: runB, status: 'cancelled' });
    const doneB = await watcher.completed(runB, 5_000);
    assert.equal([doneB.payload.status, doneB.payload.message.content], ['cancelled', '']);

    // Running: refused for others and without a token, then cancelled by the owner.
    await watcher.until(() => deltas(watcher, runA).length >= 2, 10_000, 'the first run streaming');
    const noToken = await rest(ctx.base, 'POST', `/v1/runs/${runA}/cancel`);
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.code, 'unauthenticated');
    const byStranger = await rest(ctx.base, 'POST', `/v1/runs/${runA}/cancel`, { token: strangerToken });
    assert.equal(byStranger.status, 404, JSON.stringify(byStranger.body));
    assert.equal(byStranger.body.code, 'not_found');
    const cancelA = await rest(ctx.base, 'POST', `/v1/runs/${runA}/cancel`, { token });
    assert.equal(cancelA.status, 200, JSON.stringify(cancelA.body));
    assert.equal(cancelA.body, { run_id: runA, status: 'cancelling' });
    const doneA = await watcher.completed(runA, 5_000);
    assert.equal(doneA.payload.status, 'cancelled');
    assert.equal(deltas(watcher, runA).map((d) => d.payload.delta).join(''), doneA.payload.message.content);
    assert.ok(doneA.payload.message.content.length > 0, 'partial text kept');

    // Finished: 409, both for the cancelled runs and for a completed one.
    for (const runId of [runA, runB]) {
      const again = await rest(ctx.base, 'POST', `/v1/runs/${runId}/cancel`, { token });
      assert.equal(again.status, 409, JSON.stringify(again.body));
      assert.equal(again.body.code, 'conflict');
    }
    const c = await rest(ctx.base, 'POST', `/v1/threads/${thread_id}/messages`, { token, body: { content: 'REST third [[words:3]]' } });
    assert.equal(c.status, 202);
    const doneC = await watcher.completed(c.body.run_id);
    assert.equal(doneC.payload.status, 'completed');
    const late = await rest(ctx.base, 'POST', `/v1/runs/${c.body.run_id}/cancel`, { token });
    assert.equal(late.status, 409);
    assert.equal(late.body.code, 'conflict');
    const unknown = await rest(ctx.base, 'POST', '/v1/runs/run_nope/cancel', { token });
    assert.equal(unknown.status, 404);
    assert.equal((await storedRun(ctx, runA)).status, 'cancelled');
    assert.equal((await storedRun(ctx, runB)).status, 'cancelled');
  });

  test.run();
}

cancelSuite('redis');
cancelSuite('embedded');
