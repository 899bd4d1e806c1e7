/**
 * REST long-poll GET /v1/threads/:id/events?after_seq=&wait_ms=: stored events at once, a live
 * event as soon as it is stored, an empty answer after wait_ms, auth and isolation, and a client
 * that follows a whole turn by looping reconstructs exactly the stored log.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import { rest } from './support/rest-client.js';
import { connect, redisOnlyTest, useStack, type StackCtx as Ctx } from './support/fixture.js';
import { sleep } from './support/wait.js';

function longPollSuite(backend: Backend): void {
  const test = suite<Ctx>(`long-poll events (${backend})`);

  const redisOnly = redisOnlyTest(test, backend);
  useStack(test, { backend });

  async function storedEvents(ctx: Ctx, threadId: string) {
    const rows = await ctx.stack.db.selectFrom('events').select(['type', 'payload']).where('thread_id', '=', threadId).orderBy('seq').execute();
    return rows.map((r) => ({ type: r.type, payload: r.payload }));
  }

  /** A thread of `sub` with one completed turn; returns its id and last seq. */
  async function threadWithTurn(ctx: Ctx, sub: string) {
    const client = await connect(ctx, sub);
    const ack = await client.request('message.send', { content: 'Something to remember [[words:12]]' });
    const done = await client.completed(ack.payload.run_id);
    assert.equal(done.payload.status, 'completed');
    return { client, threadId: ack.payload.thread_id as string, lastSeq: done.payload.seq as number };
  }

  const eventsPath = (threadId: string, afterSeq: number, waitMs?: number) =>
    `/v1/threads/${threadId}/events?after_seq=${afterSeq}${waitMs === undefined ? '' : `&wait_ms=${waitMs}`}`;

  test('stored events come back at once, oldest first, with last_seq', async (ctx) => {
    const token = await ctx.stack.token('lp-reader');
    const { threadId, lastSeq } = await threadWithTurn(ctx, 'lp-reader');
    const stored = await storedEvents(ctx, threadId);
    assert.equal(stored.length, lastSeq);

    const all = await rest(ctx.base, 'GET', eventsPath(threadId, 0), { token });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body, { thread_id: threadId, events: stored, last_seq: lastSeq }, 'every stored event, field for field');
    assert.equal(all.body.events.map((e: any) => e.payload.seq), stored.map((_, i) => i + 1), 'oldest first, no gaps');
    assert.equal(all.body.events[0].type, 'message_created');
    assert.equal(all.body.events.at(-1).type, 'agent_completed');

    // With events to return, wait_ms does not delay the answer.
    const waiting = await rest(ctx.base, 'GET', eventsPath(threadId, 2, 10_000), { token });
    assert.equal(waiting.status, 200);
    assert.ok(waiting.ms < 2_000, `answered in ${Math.round(waiting.ms)} ms though wait_ms was 10 s`);
    assert.equal(waiting.body.events, stored.slice(2));
    assert.equal(waiting.body.last_seq, lastSeq);
  });

  test('a waiting poll returns as soon as a new event is stored, long before wait_ms', async (ctx) => {
    const token = await ctx.stack.token('lp-waiter');
    const { threadId, lastSeq } = await threadWithTurn(ctx, 'lp-waiter');
    const sender = await connect(ctx, 'lp-waiter');

    let settled = false;
    const poll = rest(ctx.base, 'GET', eventsPath(threadId, lastSeq, 10_000), { token, timeoutMs: 15_000 }).finally(() => (settled = true));
    // A window in which nothing may happen: the poll is still open with nothing to report.
    await sleep(300);
    assert.not.ok(settled, 'the poll waits while nothing happens');

    const sentAt = performance.now();
    const ack = await sender.request('message.send', { thread_id: threadId, content: 'Wake the poller [[words:5]]' });
    assert.equal(ack.type, 'ack');
    const res = await poll;
    const afterSend = performance.now() - sentAt;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(afterSend < 3_000, `returned ${Math.round(afterSend)} ms after the send`);
    assert.ok(res.ms < 9_000, `returned after ${Math.round(res.ms)} ms, not after wait_ms`);
    const events = res.body.events as any[];
    assert.ok(events.length >= 1);
    assert.equal(events[0].type, 'message_created');
    assert.equal(events[0].payload.seq, lastSeq + 1);
    assert.equal(events[0].payload.message.id, ack.payload.message_id);
    assert.equal(events[0].payload.message.content, 'Wake the poller [[words:5]]');
    assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => lastSeq + 1 + i), 'gap-free from after_seq');
    assert.equal(res.body.last_seq, events.at(-1).payload.seq);
    await sender.completed(ack.payload.run_id);
  });

  test('with nothing new, the poll returns empty after wait_ms', async (ctx) => {
    const token = await ctx.stack.token('lp-idle');
    const { threadId, lastSeq } = await threadWithTurn(ctx, 'lp-idle');
    const res = await rest(ctx.base, 'GET', eventsPath(threadId, lastSeq, 300), { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body, { thread_id: threadId, events: [], last_seq: lastSeq });
    assert.ok(res.ms >= 300, `waited ${Math.round(res.ms)} ms`);
    assert.ok(res.ms < 3_000, `returned after ${Math.round(res.ms)} ms, well before 10 s`);
    // wait_ms=0 (or absent): no wait at all.
    const now = await rest(ctx.base, 'GET', eventsPath(threadId, lastSeq), { token });
    assert.equal(now.body, { thread_id: threadId, events: [], last_seq: lastSeq });
    assert.ok(now.ms < 1_000);
  });

  redisOnly('401 without a valid token; 404 for someone else\'s thread or a missing one', async (ctx) => {
    const { threadId } = await threadWithTurn(ctx, 'lp-owner');
    const none = await rest(ctx.base, 'GET', eventsPath(threadId, 0));
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'unauthenticated');
    const bad = await rest(ctx.base, 'GET', eventsPath(threadId, 0), { token: 'not.a.jwt' });
    assert.equal(bad.status, 401);
    for (const token of [await ctx.stack.token('lp-colleague'), await ctx.stack.token('lp-owner', 'other-corp')]) {
      // A waiting poll by a stranger is refused at once, not after wait_ms.
      const res = await rest(ctx.base, 'GET', eventsPath(threadId, 0, 5_000), { token });
      assert.equal(res.status, 404, JSON.stringify(res.body));
      assert.equal(res.body.code, 'not_found');
      assert.ok(res.ms < 2_000);
      assert.not.ok(JSON.stringify(res.body).includes('Something to remember'), 'nothing leaked');
    }
    const missing = await rest(ctx.base, 'GET', eventsPath('t_missing', 0), { token: await ctx.stack.token('lp-owner') });
    assert.equal(missing.status, 404);
  });

  test('a client looping the long-poll through a whole turn reconstructs exactly the stored events', async (ctx) => {
    const token = await ctx.stack.token('lp-follower');
    const thread = await rest(ctx.base, 'POST', '/v1/threads', { token, body: {} });
    assert.equal(thread.status, 201, JSON.stringify(thread.body));
    const threadId = thread.body.id as string;
    const sent = await rest(ctx.base, 'POST', `/v1/threads/${threadId}/messages`, {
      token,
      body: { content: 'Follow me by polling [[words:60]] [[delay:8]]' },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const runId = sent.body.run_id as string;

    const received: any[] = [];
    let after = 0;
    let polls = 0;
    const deadline = Date.now() + 20_000;
    while (!received.some((e) => e.type === 'agent_completed' && e.payload.run_id === runId)) {
      if (Date.now() > deadline) throw new Error(`the turn did not complete over the long-poll; got ${received.length} events`);
      const res = await rest(ctx.base, 'GET', eventsPath(threadId, after, 5_000), { token });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      polls++;
      if (res.body.events.length > 0) {
        assert.equal(res.body.events[0].payload.seq, after + 1, 'each answer starts right after after_seq');
      } else {
        assert.equal(res.body.last_seq, after);
      }
      received.push(...res.body.events);
      after = res.body.last_seq;
    }
    assert.ok(polls > 1, `the turn arrived over several polls (${polls})`);
    assert.equal(received.map((e) => e.payload.seq), received.map((_, i) => i + 1), 'gap-free, nothing doubled');
    assert.equal(received, await storedEvents(ctx, threadId), 'exactly the stored events');
    const completed = received.at(-1);
    assert.equal(completed.type, 'agent_completed');
    assert.equal(completed.payload.status, 'completed');
    const text = received.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
    assert.equal(text, completed.payload.message.content);
  });

  test.run();
}

longPollSuite('redis');
longPollSuite('embedded');
