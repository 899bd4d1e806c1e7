/**
 * The client SDK (protocol/client) in Node, with the `ws` package as its WebSocket, against a live
 * gateway and worker on Postgres + Redis. Network faults the server cannot make by itself (offline,
 * a half-open connection) come from a TCP proxy in front of the gateway.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { signToken } from '../server/auth.js';
import {
  ConversationClient, ConversationError, type ConnectionStatus, type ConversationClientOptions, type Refusal, type ThreadState,
  type WebSocketConstructor,
} from '../protocol/client/index.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';
import { waitFor, within } from './support/wait.js';

interface Ctx extends StackCtx {
  sdks: ConversationClient[];
  proxies: TcpProxy[];
}

const test = suite<Ctx>('client SDK');
useStack(test, {
  setup: (ctx) => {
    ctx.sdks = [];
    ctx.proxies = [];
  },
});
test.after.each(async (ctx) => {
  for (const sdk of ctx.sdks.splice(0)) sdk.close();
  for (const proxy of ctx.proxies.splice(0)) await proxy.close();
});

interface Recorded {
  sdk: ConversationClient;
  statuses: ConnectionStatus[];
  tokens: number;
  refusals: Refusal[];
}

/** A client of `sub` with fast backoff, recording its statuses and token requests. */
function client(ctx: Ctx, sub: string, options: Partial<ConversationClientOptions> & { url?: string } = {}): Recorded {
  const recorded: Recorded = { sdk: undefined as unknown as ConversationClient, statuses: [], tokens: 0, refusals: [] };
  const { token, ...rest } = options;
  recorded.sdk = new ConversationClient({
    url: ctx.url,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    backoff: { baseMs: 20, maxMs: 200 },
    token: () => {
      recorded.tokens += 1;
      return token ? token() : ctx.stack.token(sub);
    },
    ...rest,
  });
  recorded.sdk.on('status', (status) => recorded.statuses.push(status));
  recorded.sdk.on('refused', (refusal) => recorded.refusals.push(refusal));
  ctx.sdks.push(recorded.sdk);
  return recorded;
}

function opened(recorded: Recorded, timeoutMs = 5_000): Promise<void> {
  return waitFor(() => recorded.sdk.status === 'open', timeoutMs, 'the client to be open');
}

function completedRun(sdk: ConversationClient, threadId: string, runId: string, timeoutMs = 15_000): Promise<ThreadState> {
  return waitFor(() => {
    const status = sdk.thread(threadId)?.runs[runId]?.status;
    return status === 'completed' || status === 'cancelled' || status === 'failed';
  }, timeoutMs, `run ${runId} to complete`).then(() => sdk.thread(threadId)!);
}

/** The thread's stored events, as (seq, type) pairs, and the run's stored assistant text. */
async function stored(ctx: Ctx, threadId: string) {
  const events = await ctx.stack.db.selectFrom('events').select(['seq', 'type']).where('thread_id', '=', threadId).orderBy('seq').execute();
  const messages = await ctx.stack.db.selectFrom('messages').select(['id', 'role', 'content', 'run_id']).where('thread_id', '=', threadId).orderBy('created_at').execute();
  const runs = await ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('thread_id', '=', threadId).execute();
  return { events, messages, runs };
}

function seqs(state: ThreadState): number[] {
  return state.events.map((e) => e.payload.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

test('the server drops the socket mid-turn: the client resumes and its thread ends with the full text, once', async (ctx) => {
  const alice = client(ctx, 'alice-drop');
  await opened(alice);
  const snapshots: string[] = [];
  alice.sdk.on('thread', (state) => {
    const text = state.messages.filter((m) => m.role === 'assistant').map((m) => m.content).join('|');
    snapshots.push(text);
  });
  const ack = await alice.sdk.send('Tell me a long story [[words:60]] [[delay:15]]');
  // Some text has streamed: now the server cuts the socket (no close frame, as a crashed proxy would).
  await waitFor(() => (alice.sdk.thread(ack.thread_id)?.messages.find((m) => m.role === 'assistant')?.content.length ?? 0) > 20, 10_000, 'some streamed text');
  const followers = ctx.node.gateway!.fanout.followersOf(ack.thread_id);
  assert.equal(followers.length, 1, 'the gateway holds the one socket following the thread');
  followers[0]!.connection.ws!.close();
  await waitFor(() => alice.statuses.includes('reconnecting'), 5_000, 'the client to notice the drop');

  const state = await completedRun(alice.sdk, ack.thread_id, ack.run_id);
  assert.ok(alice.statuses.lastIndexOf('open') > alice.statuses.indexOf('reconnecting'), 'it reconnected');
  const db = await stored(ctx, ack.thread_id);
  const finalText = db.messages.find((m) => m.role === 'assistant')!.content;
  assert.ok(finalText.split(' ').length >= 60);
  const assistant = state.messages.filter((m) => m.role === 'assistant');
  assert.equal(assistant.length, 1, 'one assistant message');
  assert.equal(assistant[0]!.content, finalText, 'the full text');
  assert.equal(state.messages.filter((m) => m.role === 'user').length, 1, 'one user message');
  assert.equal(seqs(state), range(1, db.events.length), 'every stored event once, in order');
  assert.equal(state.events.map((e) => e.type), db.events.map((e) => e.type));
  // Also while it streamed: the text shown was always a beginning of the final text, never doubled.
  for (const text of snapshots) assert.ok(finalText.startsWith(text), `shown text is a prefix of the final text: ${text.slice(0, 80)}`);
  assert.equal(state.runs[ack.run_id]!.status, 'completed');
});

test('token refresh: auth.expiring is answered with a fresh token from the provider, and the socket stays open past the first exp', async (ctx) => {
  const refreshed: string[] = [];
  const bob = client(ctx, 'bob-refresh', { token: () => ctx.stack.token('bob-refresh', 'acme', 3) });
  bob.sdk.on('tokenRefreshed', (expiresAt) => refreshed.push(expiresAt));
  await opened(bob);
  const firstExpiry = Date.parse(bob.sdk.sessionInfo!.token_expires_at);
  await waitFor(() => refreshed.length >= 1, 8_000, 'a refresh');
  assert.ok(bob.tokens >= 2, 'the provider was asked again before expiry');
  assert.ok(Date.parse(refreshed[0]!) >= firstExpiry, 'the new token expires later');
  await waitFor(() => Date.now() > firstExpiry + 500, 6_000, 'the first token to expire');
  assert.equal(bob.sdk.status, 'open');
  assert.equal(bob.statuses.filter((s) => s === 'open').length, 1, 'the same socket: no reconnect');
  const ack = await bob.sdk.send('Still there? [[words:3]]');
  await completedRun(bob.sdk, ack.thread_id, ack.run_id);
});

test('a refused token surfaces as one refused event, and the client stops instead of reconnecting', async (ctx) => {
  const forged = await signToken('x'.repeat(48), { sub: 'mallory', workspace: 'acme', ttlSeconds: 600 });
  const mallory = client(ctx, 'mallory', { token: () => forged });
  const queued = mallory.sdk.send('never sent').then(
    () => assert.unreachable('a send on a refused client must not resolve'),
    (error: unknown) => error,
  );
  await waitFor(() => mallory.sdk.status === 'stopped', 5_000, 'the client to stop');
  assert.equal(mallory.refusals.length, 1);
  assert.equal(mallory.refusals[0]!.code, 'unauthenticated');
  assert.match(mallory.refusals[0]!.message, /signature/);
  assert.equal(mallory.refusals[0]!.closeCode, 4001, 'told the way a browser can read: an error frame, then close 4001');
  const error = await within(queued, 1_000, 'the queued send to fail');
  assert.instance(error, ConversationError);
  assert.equal((error as ConversationError).code, 'client_closed');
  // Backoff here is 20-200 ms: a loop would have tried many times within this window.
  const attempts = mallory.tokens;
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.equal(mallory.tokens, attempts, 'no further connection attempts');
  assert.equal(attempts, 1);
  assert.not.ok(mallory.statuses.includes('open'));
});

test('an expired token is replaced once by a fresh one from the provider, then the client connects', async (ctx) => {
  let calls = 0;
  const carol = client(ctx, 'carol-expired', {
    token: async () => (++calls === 1 ? signToken(ctx.stack.secret, { sub: 'carol-expired', workspace: 'acme', ttlSeconds: -60 }) : ctx.stack.token('carol-expired')),
  });
  await opened(carol);
  assert.equal(calls, 2);
  assert.equal(carol.refusals.length, 0);
});

test('the offline queue: a send made while the server is unreachable goes out once the client connects, and is stored once', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  ctx.proxies.push(proxy);
  proxy.refuse(true);
  const dave = client(ctx, 'dave-offline', { url: `ws://127.0.0.1:${proxy.port}/v1/ws` });
  await waitFor(() => dave.statuses.includes('reconnecting'), 5_000, 'a failed connect');
  const sent = dave.sdk.send('Sent while offline [[words:4]]');
  assert.equal(dave.sdk.outbox.length, 1);
  assert.equal(dave.sdk.outbox[0]!.state, 'queued');
  proxy.refuse(false);
  const ack = await within(sent, 5_000, 'the queued send');
  assert.equal(dave.sdk.outbox.length, 0);
  await completedRun(dave.sdk, ack.thread_id, ack.run_id);
  const db = await stored(ctx, ack.thread_id);
  assert.equal(db.messages.filter((m) => m.role === 'user').length, 1);
  assert.equal(db.runs.length, 1);
});

test('a send whose ack is lost with the connection is sent again with the same client_message_id and stored once', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  ctx.proxies.push(proxy);
  const erin = client(ctx, 'erin-lost-ack', { url: `ws://127.0.0.1:${proxy.port}/v1/ws`, heartbeatMs: 0 });
  await opened(erin);
  // The frame reaches the server, the answer never reaches the client; then the connection dies.
  proxy.mute();
  const sent = erin.sdk.send('Is this stored twice? [[words:4]]');
  await waitFor(async () => (await ctx.stack.db.selectFrom('messages').select('id').where('content', '=', 'Is this stored twice? [[words:4]]').execute()).length === 1, 5_000, 'the server to store the message');
  assert.equal(erin.sdk.outbox[0]?.state, 'sent');
  proxy.cut();
  const ack = await within(sent, 5_000, 'the resent send');
  assert.equal(ack.deduplicated, true, 'the server recognised the resend');
  await completedRun(erin.sdk, ack.thread_id, ack.run_id);
  const db = await stored(ctx, ack.thread_id);
  assert.equal(db.messages.filter((m) => m.role === 'user').length, 1, 'stored once');
  assert.equal(db.runs.length, 1, 'one run');
  const state = erin.sdk.thread(ack.thread_id)!;
  assert.equal(seqs(state), range(1, db.events.length), 'the replay after the resend came through whole, once');
});

test('request timeout: a request with no answer rejects with request_timeout; a dead connection is found by the heartbeat and replaced', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  ctx.proxies.push(proxy);
  const frank = client(ctx, 'frank-timeout', { url: `ws://127.0.0.1:${proxy.port}/v1/ws`, requestTimeoutMs: 300, heartbeatMs: 0 });
  await opened(frank);
  await frank.sdk.listThreads();
  proxy.mute();
  const started = Date.now();
  const error = await frank.sdk.listThreads().then(() => undefined, (e: unknown) => e);
  assert.instance(error, ConversationError);
  assert.equal((error as ConversationError).code, 'request_timeout');
  assert.ok(Date.now() - started >= 290 && Date.now() - started < 3_000, `rejected after the timeout (${Date.now() - started} ms)`);
  frank.sdk.close();

  const grace = client(ctx, 'grace-heartbeat', { url: `ws://127.0.0.1:${proxy.port}/v1/ws`, heartbeatMs: 200 });
  await opened(grace);
  const accepted = proxy.accepted();
  proxy.mute();
  await waitFor(() => grace.statuses.includes('reconnecting'), 5_000, 'the heartbeat to drop the silent socket');
  await opened(grace);
  assert.ok(proxy.accepted() > accepted, 'a new connection');
  const list = await grace.sdk.listThreads();
  assert.ok(Array.isArray(list.threads));
});

test('two tabs of one user both see every event of every turn, whichever tab sends', async (ctx) => {
  const tabA = client(ctx, 'henry-tabs');
  const tabB = client(ctx, 'henry-tabs');
  await Promise.all([opened(tabA), opened(tabB)]);
  const first = await tabA.sdk.send('Hello from tab A [[words:20]] [[delay:5]]');
  await tabB.sdk.follow(first.thread_id);
  await Promise.all([completedRun(tabA.sdk, first.thread_id, first.run_id), completedRun(tabB.sdk, first.thread_id, first.run_id)]);
  const second = await tabB.sdk.send('And now from tab B. What time is it?', { threadId: first.thread_id });
  const [a, b] = await Promise.all([completedRun(tabA.sdk, first.thread_id, second.run_id), completedRun(tabB.sdk, first.thread_id, second.run_id)]);
  const db = await stored(ctx, first.thread_id);
  assert.equal(seqs(a), range(1, db.events.length), 'tab A: every event once');
  assert.equal(seqs(b), range(1, db.events.length), 'tab B: every event once');
  assert.equal(a.messages.map((m) => [m.role, m.content]), db.messages.filter((m) => m.role !== 'tool' && (m.role === 'user' || m.content !== '')).map((m) => [m.role, m.content]));
  assert.equal(b.messages.map((m) => [m.role, m.content]), a.messages.map((m) => [m.role, m.content]));
  const tools = b.runs[second.run_id]!.tools;
  assert.equal(tools.map((t) => [t.name, t.status]), [['get_current_time', 'completed']], 'tool activity in the state');
});

test('history pages fold into the thread state, oldest first, and a follow from there resumes live', async (ctx) => {
  const ivy = client(ctx, 'ivy-history');
  await opened(ivy);
  const ack = await ivy.sdk.send('First turn [[words:12]]');
  await completedRun(ivy.sdk, ack.thread_id, ack.run_id);
  const db = await stored(ctx, ack.thread_id);
  ivy.sdk.close();

  const again = client(ctx, 'ivy-history');
  await opened(again);
  const page = await again.sdk.history(ack.thread_id, { limit: 3 });
  assert.equal(page.has_more, true);
  const state = again.sdk.thread(ack.thread_id)!;
  assert.equal(seqs(state), range(db.events.length - 2, db.events.length));
  while (again.sdk.thread(ack.thread_id)!.hasOlder) await again.sdk.history(ack.thread_id, { limit: 3 });
  const full = again.sdk.thread(ack.thread_id)!;
  assert.equal(seqs(full), range(1, db.events.length));
  assert.equal(full.messages.find((m) => m.role === 'assistant')!.content, db.messages.find((m) => m.role === 'assistant')!.content);
  await again.sdk.follow(ack.thread_id);
  const next = await again.sdk.send('Second turn [[words:5]]', { threadId: ack.thread_id });
  const after = await completedRun(again.sdk, ack.thread_id, next.run_id);
  assert.equal(seqs(after), range(1, (await stored(ctx, ack.thread_id)).events.length));
});

test('events already applied are dropped by seq: a second replay of the whole thread on the same socket changes nothing', async (ctx) => {
  const jack = client(ctx, 'jack-twice');
  await opened(jack);
  const ack = await jack.sdk.send('Replay me [[words:15]]');
  await completedRun(jack.sdk, ack.thread_id, ack.run_id);
  const total = (await stored(ctx, ack.thread_id)).events.length;
  jack.sdk.close();

  // The socket the client runs on, and every seq that arrives on it.
  const wire: number[] = [];
  let socket: WebSocket | undefined;
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      socket = this;
      this.on('message', (data) => {
        const seq = JSON.parse(String(data)).payload?.seq;
        if (typeof seq === 'number') wire.push(seq);
      });
    }
  }
  const again = client(ctx, 'jack-twice', { WebSocket: Recording as unknown as WebSocketConstructor });
  await opened(again);
  const applied: number[] = [];
  again.sdk.on('event', (event) => applied.push(event.payload.seq));
  const first = await again.sdk.follow(ack.thread_id);
  assert.equal(first.last_seq, total);
  await waitFor(() => wire.length === total, 5_000, 'the replay');
  // The whole thread again on the same socket, as a client bug or a second tab's library might cause.
  socket!.send(JSON.stringify({ type: 'thread.subscribe', id: 'extra', payload: { thread_id: ack.thread_id, after_seq: 0 } }));
  await waitFor(() => wire.length === 2 * total, 5_000, 'the second replay on the wire');
  assert.equal(applied, range(1, total), 'each event applied once, in order');
  const state = again.sdk.thread(ack.thread_id)!;
  assert.equal(seqs(state), range(1, total));
  assert.equal(state.messages.filter((m) => m.role === 'assistant').length, 1);
  assert.equal(state.messages.find((m) => m.role === 'assistant')!.content, (await stored(ctx, ack.thread_id)).messages.find((m) => m.role === 'assistant')!.content);
});

test("transport 'ticket': the JWT goes to POST /v1/ws-ticket, the socket carries only a one-use ticket; a refused token stops there", async (ctx) => {
  const wire: string[] = [];
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      wire.push(`${url} ${JSON.stringify(protocols)}`);
    }
  }
  const olga = client(ctx, 'olga-ticket', { transport: 'ticket', WebSocket: Recording as unknown as WebSocketConstructor });
  await opened(olga);
  assert.equal(wire.length, 1);
  assert.match(wire[0]!, /\/v1\/ws\?ticket=[^ ]+ \["chat\.v1"\]$/, 'a ticket in the URL, only chat.v1 offered');
  assert.not.match(wire[0]!, /eyJ/, 'no JWT in the handshake');
  const ack = await olga.sdk.send('By ticket [[words:3]]');
  await completedRun(olga.sdk, ack.thread_id, ack.run_id);

  const forged = await signToken('y'.repeat(48), { sub: 'olga-ticket', workspace: 'acme', ttlSeconds: 600 });
  const refused = client(ctx, 'olga-ticket', { transport: 'ticket', token: () => forged });
  await waitFor(() => refused.sdk.status === 'stopped', 5_000, 'the client to stop');
  assert.equal(refused.refusals[0]!.code, 'unauthenticated');
  assert.equal(refused.refusals[0]!.httpStatus, 401);
  assert.equal(refused.tokens, 1);
});

test('a URL that is not the socket: the HTTP answer to the handshake is read, and the client stops', async (ctx) => {
  const lost = client(ctx, 'kim-wrong-url', { url: ctx.url.replace('/v1/ws', '/elsewhere/v1/ws') });
  await waitFor(() => lost.sdk.status === 'stopped', 5_000, 'the client to stop');
  assert.equal(lost.refusals.length, 1);
  assert.equal(lost.refusals[0]!.httpStatus, 404);
  assert.equal(lost.refusals[0]!.code, 'not_found');
  assert.match(lost.refusals[0]!.message, /Check the server URL/);
});

test('over the per-user socket limit: closed 4008 with a retry hint; the client waits at least that long, and gets in once a slot frees', async (ctx) => {
  const limited = await ctx.stack.start({ worker: false }, { RATE_LIMIT_CONNECTIONS_PER_USER: '1' });
  const url = ctx.stack.wsUrl(limited);
  const first = client(ctx, 'lena-limit', { url });
  await opened(first);
  const delays: Array<{ code?: string; delayMs?: number; closeCode?: number }> = [];
  const second = client(ctx, 'lena-limit', { url });
  second.sdk.on('status', (status, detail) => {
    if (status === 'reconnecting') delays.push(detail);
  });
  await waitFor(() => delays.some((d) => d.code === 'rate_limited'), 5_000, 'the refusal');
  const refusal = delays.find((d) => d.code === 'rate_limited')!;
  assert.equal(refusal.closeCode, 4008);
  assert.ok(refusal.delayMs! >= 1000, `waits at least the server's hint (${refusal.delayMs} ms)`);
  assert.equal(second.refusals.length, 0, 'not a refusal to give up on');
  first.sdk.close();
  await opened(second, 10_000);
});

test('thread_deleted: a follower is told, and drops the thread', async (ctx) => {
  const owner = client(ctx, 'mia-delete');
  const other = client(ctx, 'mia-delete');
  await Promise.all([opened(owner), opened(other)]);
  const ack = await owner.sdk.send('Soon gone [[words:3]]');
  await other.sdk.follow(ack.thread_id);
  await completedRun(other.sdk, ack.thread_id, ack.run_id);
  const deleted: string[] = [];
  other.sdk.on('threadDeleted', (threadId) => deleted.push(threadId));
  await owner.sdk.deleteThread(ack.thread_id);
  await waitFor(() => deleted.length === 1, 5_000, 'thread_deleted');
  assert.equal(deleted, [ack.thread_id]);
  assert.equal(other.sdk.thread(ack.thread_id), undefined);
  assert.equal(owner.sdk.thread(ack.thread_id), undefined);
});

test('seq_out_of_range: a client ahead of the server (a restored database) starts the thread over from 0', async (ctx) => {
  const nora = client(ctx, 'nora-ahead');
  await opened(nora);
  const ack = await nora.sdk.send('Count me [[words:6]]');
  await completedRun(nora.sdk, ack.thread_id, ack.run_id);
  const total = (await stored(ctx, ack.thread_id)).events.length;
  nora.sdk.close();

  const again = client(ctx, 'nora-ahead');
  await opened(again);
  const result = await again.sdk.follow(ack.thread_id, { afterSeq: total + 50 });
  assert.equal(result.last_seq, total);
  await waitFor(() => again.sdk.thread(ack.thread_id)?.lastSeq === total, 5_000, 'the thread from 0');
  assert.equal(seqs(again.sdk.thread(ack.thread_id)!), range(1, total));
});

test.run();
