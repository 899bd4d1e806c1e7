/**
 * AG-UI over the gateway's WebSocket (`agui.v1` on GET /v1/ws) against a real stack: the server
 * answers the subprotocol and sends bare AG-UI events that pass EventSchema and verifyEvents; a
 * stream cut after any number of events and continued with `agui.connect` from the last event's
 * seq and part equals the uninterrupted stream (every cut of a finished thread, between the parts
 * of one stored event too, and cuts of a run while it streams); a client joining without a seq
 * gets a prelude (RUN_STARTED, MESSAGES_SNAPSHOT, the open run) that verifies and holds the
 * history; bad frames and strangers get today's `error` frames; the token works as on native sockets.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import type { Message } from '@ag-ui/core';
import { useStack, type StackCtx } from './support/fixture.js';
import { checkEvents, comparable, storedAsAgui, verified } from './support/agui.js';
import { AguiSocket, type AguiFrameEvent } from './support/agui-socket.js';
import { rest } from './support/rest-client.js';
import { sleep } from './support/wait.js';

interface Ctx extends StackCtx {
  sockets: AguiSocket[];
}

const test = suite<Ctx>('AG-UI over the WebSocket');
useStack(test, {
  setup: (ctx) => {
    ctx.sockets = [];
  },
});
test.after.each((ctx) => {
  for (const socket of ctx.sockets.splice(0)) socket.close();
});

const TOOL_TURN = '[[say:Let me work that out]] calculate 6*7';

async function open(ctx: Ctx, token: string, options?: Parameters<typeof AguiSocket.open>[2]): Promise<AguiSocket> {
  const socket = await AguiSocket.open(ctx.url, token, options);
  ctx.sockets.push(socket);
  return socket;
}

function runInput(threadId: string, content: string) {
  return { threadId, runId: randomUUID(), messages: [{ id: `u-${randomUUID()}`, role: 'user', content }], tools: [], context: [] };
}

/** The position of an event, as agui.connect takes it. */
function position(event: AguiFrameEvent): { after_seq: number; after_part?: number } {
  const { seq, part } = event.metadata!;
  return { after_seq: seq!, ...(part === undefined ? {} : { after_part: part }) };
}

/** Runs the turns on a fresh thread over one agui socket; the thread's id. */
async function thread(ctx: Ctx, token: string, turns: string[]): Promise<string> {
  const threadId = `t-${randomUUID()}`;
  const socket = await open(ctx, token);
  for (const [i, content] of turns.entries()) {
    socket.send('agui.run', runInput(threadId, content));
    await socket.untilRunsEnd(i + 1, 20_000);
  }
  socket.close();
  return threadId;
}

test('agui.run: the server answers agui.v1 and sends bare AG-UI events of the run, valid and verified', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const socket = await open(ctx, token);
  assert.is(socket.ws.protocol, 'agui.v1');
  const threadId = `t-${randomUUID()}`;
  socket.send('agui.run', runInput(threadId, TOOL_TURN));
  await socket.untilRunsEnd(1, 20_000);
  checkEvents(socket.events);
  await verified(socket.events);
  const types = socket.events.map((e) => e.type);
  assert.is(types[0], 'RUN_STARTED');
  assert.ok(types.includes('TOOL_CALL_RESULT') && types.includes('TEXT_MESSAGE_CONTENT'));
  assert.is(types.at(-1), 'RUN_FINISHED');
  for (const event of socket.events) assert.type(event.metadata?.seq, 'number');
  // RUN_STARTED carries the run's user message as its input, under its stored id.
  const input = socket.events[0]!.input as { messages: Message[] };
  assert.is(input.messages[0]!.content, TOOL_TURN);
  // The text's END and the tool call's START, ARGS and END come from one stored event: parts 0-3 of one seq.
  const at = types.indexOf('TOOL_CALL_START') - 1;
  const parts = socket.events.slice(at, at + 4);
  assert.equal(parts.map((e) => e.type), ['TEXT_MESSAGE_END', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END']);
  assert.equal(parts.map((e) => e.metadata!.part), [0, 1, 2, 3]);
  assert.is(new Set(parts.map((e) => e.metadata!.seq)).size, 1);
  assert.is(socket.errors.length, 0);
});

test('every cut of a finished thread\'s stream, continued from the last seq and part, equals the uninterrupted stream', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = await thread(ctx, token, ['hello [[words:4]]', TOOL_TURN, 'then fail [[fault:500]]']);
  const whole = await open(ctx, token);
  whole.send('agui.connect', { thread_id: threadId, after_seq: 0 });
  await whole.untilRunsEnd(3);
  const all = whole.events;
  checkEvents(all);
  await verified(all);
  assert.equal(all.filter((e) => e.type === 'RUN_STARTED').length, 3);
  assert.is(all.at(-1)!.type, 'RUN_ERROR');
  assert.ok(all.some((e) => e.metadata?.part !== undefined && e.metadata.part > 0), 'some stored events give several AG-UI events');
  for (let k = 1; k < all.length; k++) {
    const first = await open(ctx, token);
    first.send('agui.connect', { thread_id: threadId, after_seq: 0 });
    await first.untilCount(k);
    first.close();
    const had = first.events.slice(0, k);
    const second = await open(ctx, token);
    second.send('agui.connect', { thread_id: threadId, ...position(had.at(-1)!) });
    await second.untilCount(all.length - k);
    const joined = [...had, ...second.events];
    assert.equal(joined, all, `cut after ${k} (${had.at(-1)!.type} ${JSON.stringify(had.at(-1)!.metadata)})`);
    second.close();
  }
  // A window in which nothing may happen: the finished thread sends nothing more after its end.
  await sleep(200);
  assert.is(whole.events.length, all.length);
});

test('cuts while the run streams: the joined streams equal the uninterrupted one', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = await thread(ctx, token, ['first [[words:3]]']);
  const live = await open(ctx, token);
  live.send('agui.connect', { thread_id: threadId, after_seq: 0 });
  await live.untilRunsEnd(1);
  const cutAt: Array<(e: AguiFrameEvent, i: number) => boolean> = [
    (e) => e.type === 'RUN_STARTED' && e.metadata!.seq! > 4,
    (e) => e.type === 'TEXT_MESSAGE_START' && e.metadata!.seq! > 4,
    (e) => e.type === 'TOOL_CALL_START',
    (e) => e.type === 'TOOL_CALL_ARGS',
    (e) => e.type === 'TOOL_CALL_RESULT',
    (e, i) => e.type === 'TEXT_MESSAGE_CONTENT' && i > 12,
  ];
  const cutters = await Promise.all(cutAt.map(async () => {
    const socket = await open(ctx, token);
    socket.send('agui.connect', { thread_id: threadId, after_seq: 0 });
    return socket;
  }));
  await Promise.all(cutters.map((socket) => socket.untilRunsEnd(1)));
  const sender = await open(ctx, token);
  sender.send('agui.run', runInput(threadId, `${TOOL_TURN} [[words:30]] [[delay:15]]`));
  const joined = await Promise.all(cutters.map(async (socket, i) => {
    await socket.until(() => socket.events.some(cutAt[i]!), 20_000, `the cut ${i}`);
    socket.close();
    const had = socket.events.slice(0, socket.events.findIndex(cutAt[i]!) + 1);
    const next = await open(ctx, token);
    next.send('agui.connect', { thread_id: threadId, ...position(had.at(-1)!) });
    await next.until(() => [...had, ...next.events].filter((e) => e.type === 'RUN_FINISHED').length >= 2, 20_000, 'the run\'s end');
    return [...had, ...next.events];
  }));
  await live.untilRunsEnd(2, 20_000);
  for (const [i, stream] of joined.entries()) assert.equal(stream, live.events, `cut ${i}`);
  await verified(live.events);
});

test('a late joiner gets a prelude: RUN_STARTED, the history as MESSAGES_SNAPSHOT, the open run from its start', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = await thread(ctx, token, ['hello [[words:4]]', TOOL_TURN]);
  // Idle: the prelude is a run of its own around the snapshot.
  const idle = await open(ctx, token);
  idle.send('agui.connect', { thread_id: threadId });
  await idle.untilRunsEnd(1);
  assert.equal(idle.events.map((e) => e.type), ['RUN_STARTED', 'MESSAGES_SNAPSHOT', 'RUN_FINISHED']);
  checkEvents(idle.events);
  await verified(idle.events);
  const history = idle.events[1]!.messages as Message[];
  const stored = await storedAsAgui(ctx.stack.db, threadId);
  // The snapshot names user messages by their stored ids (the client's ids are not in the events).
  const byStoredId = async () => (await ctx.stack.db.selectFrom('messages').select(['id', 'client_message_id']).where('thread_id', '=', threadId).execute());
  const ids = new Map((await byStoredId()).map((r) => [r.client_message_id ?? r.id, r.id]));
  assert.equal(comparable(history), stored.map((m) => (m.role === 'user' ? { ...m, id: ids.get(m.id)! } : m)));

  // Mid-run: the prelude carries the open run from its start, then the live events follow.
  const sender = await open(ctx, token);
  sender.send('agui.run', runInput(threadId, 'a long one [[words:40]] [[delay:20]]'));
  await sender.until(() => sender.events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').length >= 5, 20_000, 'text to stream');
  const late = await open(ctx, token);
  late.send('agui.connect', { thread_id: threadId });
  // Another joiner is cut right after the snapshot, and resumes from the snapshot's position.
  const cut = await open(ctx, token);
  cut.send('agui.connect', { thread_id: threadId });
  await cut.until(() => cut.events.some((e) => e.type === 'MESSAGES_SNAPSHOT'), 10_000, 'the snapshot');
  cut.close();
  const had = cut.events.slice(0, 2);
  const resumed = await open(ctx, token);
  resumed.send('agui.connect', { thread_id: threadId, ...position(had[1]!) });
  await late.untilRunsEnd(1, 20_000);
  checkEvents(late.events);
  await verified(late.events);
  assert.equal(late.events.slice(0, 3).map((e) => e.type), ['RUN_STARTED', 'MESSAGES_SNAPSHOT', 'TEXT_MESSAGE_START']);
  assert.is(late.events[0]!.metadata!.prelude, true);
  assert.is(late.events[0]!.metadata!.seq, undefined, 'the prelude RUN_STARTED is no position to resume from');
  assert.is(late.events[1]!.metadata!.seq, sender.events[0]!.metadata!.seq, 'the snapshot stands at the run\'s start');
  const text = (events: AguiFrameEvent[]) => events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
  assert.is(text(late.events), text(sender.events));
  assert.equal(late.events.slice(2), sender.events.slice(1), 'after the prelude, the run as its own client saw it');
  await resumed.untilRunsEnd(1, 20_000);
  assert.equal([...had, ...resumed.events], late.events);
});

test('bad frames, strangers and positions past the end get today\'s error frames; the socket stays open', async (ctx) => {
  const alice = await ctx.stack.token('alice');
  const threadId = await thread(ctx, alice, ['mine [[words:3]]']);
  const mallory = await open(ctx, await ctx.stack.token('mallory'));
  mallory.send('agui.connect', { thread_id: threadId }, 'c1');
  mallory.send('agui.run', runInput(threadId, 'let me in'), 'c2');
  mallory.send('message.send', { content: 'native frame' }, 'c3');
  mallory.send('agui.connect', { thread_id: threadId, after_part: 1 }, 'c4');
  mallory.ws.send('{not json');
  await mallory.until(() => mallory.errors.length >= 5, 10_000, 'five errors');
  // Frames refused at the door are answered at once, the others after their handler ran.
  const codes = Object.fromEntries(mallory.errors.map((e) => [e.id ?? 'unparsed', e.payload.code]));
  assert.equal(codes, { c1: 'not_found', c2: 'not_found', c3: 'unknown_type', c4: 'invalid_frame', unparsed: 'invalid_frame' });
  assert.is(mallory.events.length, 0, 'nothing of her thread');
  const mine = await open(ctx, alice);
  mine.send('agui.connect', { thread_id: threadId, after_seq: 999 }, 'c5');
  await mine.until(() => mine.errors.length === 1, 10_000, 'the error');
  assert.is(mine.errors[0]!.payload.code, 'seq_out_of_range');
  assert.type(mine.errors[0]!.payload.last_seq, 'number');
  assert.is(mine.closeCode, undefined);
});

test('the token as on native sockets: header, bearer subprotocol, ticket; a refusal is an error frame and 4001', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = await thread(ctx, token, ['hi [[words:2]]']);
  const ticket = (await rest(ctx.base, 'POST', '/v1/ws-ticket', { token })).body.ticket as string;
  const ways = [
    await open(ctx, token, { protocols: ['agui.v1'], headers: { authorization: `Bearer ${token}` } }),
    await open(ctx, token),
    await open(ctx, token, { protocols: ['agui.v1'], query: `?ticket=${encodeURIComponent(ticket)}` }),
  ];
  for (const socket of ways) {
    assert.is(socket.ws.protocol, 'agui.v1');
    socket.send('agui.connect', { thread_id: threadId, after_seq: 0 });
    await socket.untilRunsEnd(1);
  }
  const refused = await open(ctx, 'not-a-jwt');
  await refused.until(() => refused.closeCode !== undefined, 10_000, 'close');
  assert.is(refused.closeCode, 4001);
  assert.is(refused.errors[0]!.payload.code, 'unauthenticated');
});

test('a deleted thread ends the stream with RUN_ERROR; the token\'s expiry closes the socket with 4001 and no native notice', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const threadId = await thread(ctx, token, ['hi [[words:2]]']);
  const follower = await open(ctx, token);
  follower.send('agui.connect', { thread_id: threadId, after_seq: 0 });
  await follower.untilRunsEnd(1);
  const deleted = await rest(ctx.base, 'DELETE', `/v1/threads/${threadId}`, { token });
  assert.is(deleted.status, 200);
  await follower.until(() => follower.events.at(-1)?.type === 'RUN_ERROR', 10_000, 'the RUN_ERROR');
  assert.equal([follower.events.at(-1)!.code, follower.events.at(-1)!.metadata], ['thread_deleted', undefined]);
  checkEvents(follower.events);
  await verified(follower.events);

  const brief = await open(ctx, await ctx.stack.token('alice', 'acme', 2));
  await brief.until(() => brief.closeCode !== undefined, 10_000, 'close');
  assert.equal([brief.closeCode, brief.closeReason], [4001, 'token_expired']);
  assert.equal([brief.events.length, brief.errors.length], [0, 0], 'neither session.ready nor auth.expiring, which are not AG-UI events');
});

test.run();
