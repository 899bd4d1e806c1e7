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
  ConversationClient, ConversationError, SUBPROTOCOL_TOKEN_LIMIT, type ConnectionStatus, type ConversationClientOptions, type Refusal,
  type StatusDetail, type ThreadState, type WebSocketConstructor, type WebSocketLike,
} from '../protocol/client/index.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { startDroppingFront } from './support/dropping-front.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';
import { Gate, sleep, waitFor, within } from './support/wait.js';

interface Ctx extends StackCtx {
  sdks: ConversationClient[];
  proxies: Array<Pick<TcpProxy, 'close'>>;
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
  details: StatusDetail[];
  tokens: number;
  refusals: Refusal[];
}

/** A client of `sub` with fast backoff, recording its statuses and token requests. */
function client(ctx: Ctx, sub: string, options: Partial<ConversationClientOptions> & { url?: string } = {}): Recorded {
  const recorded: Recorded = { sdk: undefined as unknown as ConversationClient, statuses: [], details: [], tokens: 0, refusals: [] };
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
  recorded.sdk.on('status', (status, detail) => {
    recorded.statuses.push(status);
    recorded.details.push(detail);
  });
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

test('approve(): a run that waits shows its pending approval; approving it from the SDK lets the tool run and the run complete', async (ctx) => {
  const admin = await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 600, extra: { role: 'admin' } });
  const created = await fetch(`${ctx.base}/v1/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Guarded', tools: ['calculator'], require_approval: ['calculator'] }),
  });
  const agent = (await created.json()) as { id: string };
  const { sdk } = client(ctx, 'approver');
  const sent = await sdk.send('calculate 6*7 please', { agentId: agent.id });
  await waitFor(() => sdk.thread(sent.thread_id)?.runs[sent.run_id]?.status === 'waiting', 15_000, 'the run to wait');
  const pending = sdk.thread(sent.thread_id)!.runs[sent.run_id]!.pending!;
  assert.equal([pending.kind, pending.toolName, pending.arguments], ['approval', 'calculator', { expression: '6*7' }]);
  assert.equal(await sdk.approve(sent.run_id, pending.toolCallId, true), { run_id: sent.run_id, tool_call_id: pending.toolCallId, status: 'approved' });
  const state = await completedRun(sdk, sent.thread_id, sent.run_id);
  const run = state.runs[sent.run_id]!;
  assert.equal([run.status, run.pending, run.tools.map((t) => [t.name, t.status, t.result])], ['completed', undefined, [['calculator', 'completed', '42']]]);
  await sdk.approve(sent.run_id, pending.toolCallId, false).then(
    () => assert.unreachable('a second answer is refused'),
    (error: ConversationError) => assert.equal([error.code, error.retryable], ['already_answered', false]),
  );
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
  // Backoff here is 20-200 ms: a loop would have tried many times within this window, in which nothing may happen.
  const attempts = mallory.tokens;
  await sleep(800);
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

/** 22,000 CJK characters: under the 32,000-character content limit, but 66,000 bytes of UTF-8. */
const OVERSIZED = '字'.repeat(22_000);

test('a message over MAX_FRAME_BYTES in UTF-8 is refused with too_large before it is written; the socket stays open', async (ctx) => {
  const olivia = client(ctx, 'olivia-large');
  await opened(olivia);
  const error = await within(olivia.sdk.send(OVERSIZED).then(() => undefined, (e: unknown) => e), 1_000, 'the refusal');
  assert.instance(error, ConversationError);
  assert.equal((error as ConversationError).code, 'too_large');
  assert.equal((error as ConversationError).retryable, false);
  assert.equal(olivia.sdk.outbox, [], 'not left in the outbox');
  assert.equal(olivia.statuses.filter((s) => s === 'open').length, 1, 'the same socket');
  const ack = await olivia.sdk.send('A short one [[words:3]]');
  await completedRun(olivia.sdk, ack.thread_id, ack.run_id);
  const stored = await ctx.stack.db.selectFrom('messages').select('id').where('content', '=', OVERSIZED).execute();
  assert.equal(stored.length, 0);
});

test('the server closes with 1009: the request on the wire is rejected with too_large instead of resent for ever, and the limit it named is kept', async (ctx) => {
  // A client that believes the server reads a megabyte: the frame goes out and the server closes.
  const paul = client(ctx, 'paul-1009', { maxFrameBytes: 1_000_000 });
  await opened(paul);
  const error = await within(paul.sdk.send(OVERSIZED).then(() => undefined, (e: unknown) => e), 5_000, 'the send to settle');
  assert.instance(error, ConversationError);
  assert.equal((error as ConversationError).code, 'too_large');
  await opened(paul);
  assert.equal(paul.statuses.filter((s) => s === 'open').length, 2, 'one reconnect, not a loop');
  // The limit from the close reason (frame over 65536 bytes) holds from now on: refused at once.
  const again = await within(paul.sdk.send(OVERSIZED).then(() => undefined, (e: unknown) => e), 1_000, 'the second refusal');
  assert.equal((again as ConversationError).code, 'too_large');
  const ack = await paul.sdk.send('Still here [[words:3]]');
  await completedRun(paul.sdk, ack.thread_id, ack.run_id);
  assert.equal(paul.statuses.filter((s) => s === 'open').length, 2, 'no further drops');
});

test('resume after a drop with more followed threads than the server lets wait: every thread is subscribed again, none refused silently', async (ctx) => {
  // The server's own default: 32 frames may wait on a connection, the rest are refused.
  const strict = await ctx.stack.start({ worker: false }, { MAX_QUEUED_FRAMES: '32' });
  const quinn = client(ctx, 'quinn-resume', { url: ctx.stack.wsUrl(strict) });
  await opened(quinn);
  const threads = await Promise.all(Array.from({ length: 60 }, (_, i) => quinn.sdk.createThread({ title: `resume ${i}` })));
  const acks = await Promise.all(threads.map((t) => quinn.sdk.follow(t.id)));
  assert.equal(acks.length, 60);
  const followed = () => threads.filter((t) => strict.gateway!.fanout.followersOf(t.id).length === 1).length;
  assert.equal(followed(), 60, 'all followed before the drop');
  const errors: string[] = [];
  quinn.sdk.on('error', (error) => errors.push(error.code));

  strict.gateway!.fanout.followersOf(threads[0]!.id)[0]!.connection.ws!.close();
  await waitFor(() => quinn.statuses.includes('reconnecting'), 5_000, 'the drop');
  await opened(quinn);
  await waitFor(() => followed() === 60, 10_000, 'every thread followed again').catch((error) => {
    throw new Error(`${(error as Error).message}: ${followed()} of 60; errors ${JSON.stringify(errors)}`);
  });
  assert.equal(errors, []);
  // And the last one is live: a turn sent on it from another client streams into this state.
  const other = client(ctx, 'quinn-resume');
  await opened(other);
  const last = threads[59]!.id;
  const ack = await other.sdk.send('Are you there? [[words:4]]', { threadId: last });
  await completedRun(quinn.sdk, last, ack.run_id);
});

test('rate_limited refusals are waited out and retried: a burst over RATE_LIMIT_FRAMES_PER_SEC all succeeds on one socket', async (ctx) => {
  const slow = await ctx.stack.start({ worker: false }, { RATE_LIMIT_FRAMES_PER_SEC: '5' });
  const rita = client(ctx, 'rita-burst', { url: ctx.stack.wsUrl(slow) });
  await opened(rita);
  const results = await within(Promise.allSettled(Array.from({ length: 12 }, () => rita.sdk.listThreads({ limit: 1 }))), 10_000, 'the burst');
  const failures = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason?.code);
  assert.equal(failures, [], 'every request answered');
  assert.equal(rita.statuses.filter((s) => s === 'open').length, 1, 'no 4008 close, no reconnect');
});

test('an online event during a handshake does not open a second socket', async (ctx) => {
  // Node has no window: the client listens for online on globalThis, so give it an event target.
  const target = new EventTarget();
  const scope = globalThis as unknown as { addEventListener?: unknown; removeEventListener?: unknown };
  scope.addEventListener = target.addEventListener.bind(target);
  scope.removeEventListener = target.removeEventListener.bind(target);
  try {
    const proxy = await startTcpProxy(ctx.node.gateway!.port);
    ctx.proxies.push(proxy);
    proxy.refuse(true);
    const gate = new Gate();
    const sockets: WebSocket[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    }
    let calls = 0;
    const sam = client(ctx, 'sam-online', {
      url: `ws://127.0.0.1:${proxy.port}/v1/ws`,
      WebSocket: Recording as unknown as WebSocketConstructor,
      token: async () => {
        calls += 1;
        // The second connect waits for its token: the handshake is under way when online fires.
        if (calls === 2) await gate.promise;
        return ctx.stack.token('sam-online');
      },
    });
    await waitFor(() => calls === 2, 5_000, 'the second connect');
    proxy.refuse(false);
    target.dispatchEvent(new Event('online'));
    gate.open();
    await opened(sam);
    await waitFor(() => sockets.length >= 2 && sockets.at(-1)!.readyState !== WebSocket.CONNECTING, 5_000, 'the handshake');
    const open = () => sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
    assert.equal(open(), 1, `one socket open, of ${sockets.length} made`);
    assert.equal(calls, 2, 'no extra connect');
    await sam.sdk.listThreads();
    assert.equal(open(), 1);
  } finally {
    delete scope.addEventListener;
    delete scope.removeEventListener;
  }
});

test('a token provider that says "not signed in" (status 401) stops the client with one refused event, and is not asked again', async (ctx) => {
  const tina = client(ctx, 'tina-signed-out', {
    token: () => {
      throw Object.assign(new Error('/api/auth/token did not give a chat token (HTTP 401): are you signed in?'), { status: 401 });
    },
  });
  const queued = tina.sdk.send('never sent').then(() => undefined, (error: unknown) => error);
  await waitFor(() => tina.sdk.status === 'stopped', 5_000, 'the client to stop');
  assert.equal(tina.refusals.length, 1);
  assert.equal(tina.refusals[0]!.code, 'unauthenticated');
  assert.equal(tina.refusals[0]!.httpStatus, 401);
  assert.match(tina.refusals[0]!.message, /signed in/);
  assert.equal(((await within(queued, 1_000, 'the queued send')) as ConversationError).code, 'client_closed');
  // Backoff here is 20-200 ms: a loop would have asked many times within this window, in which nothing may happen.
  await sleep(800);
  assert.equal(tina.tokens, 1, 'asked once');
  // A fatal flag works the same way, and a plain failure is still retried.
  const fatal = client(ctx, 'tina-fatal', { token: () => Promise.reject(Object.assign(new Error('no session'), { fatal: true })) });
  await waitFor(() => fatal.sdk.status === 'stopped', 5_000, 'the fatal provider to stop the client');
  let flaky = 0;
  const retried = client(ctx, 'tina-flaky', { token: () => (++flaky === 1 ? Promise.reject(new Error('network down')) : ctx.stack.token('tina-flaky')) });
  await opened(retried);
  assert.equal(retried.refusals.length, 0);
});

test('requests made offline go out in the order they were made: an unfollow then a follow leaves the thread followed', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  ctx.proxies.push(proxy);
  const uma = client(ctx, 'uma-order', { url: `ws://127.0.0.1:${proxy.port}/v1/ws` });
  await opened(uma);
  const first = await uma.sdk.send('First [[words:3]]');
  await completedRun(uma.sdk, first.thread_id, first.run_id);
  const second = await uma.sdk.send('Second [[words:3]]');
  await completedRun(uma.sdk, second.thread_id, second.run_id);
  proxy.refuse(true);
  proxy.cut();
  await waitFor(() => uma.statuses.includes('reconnecting'), 5_000, 'the drop');
  // Offline: thread 1 unfollowed then followed again; thread 2 followed then unfollowed.
  const requests = [
    uma.sdk.unfollow(first.thread_id), uma.sdk.follow(first.thread_id),
    uma.sdk.follow(second.thread_id), uma.sdk.unfollow(second.thread_id),
  ];
  proxy.refuse(false);
  await within(Promise.all(requests), 10_000, 'the queued requests');
  const followers = (threadId: string) => ctx.node.gateway!.fanout.followersOf(threadId).length;
  assert.equal(followers(first.thread_id), 1, 'thread 1 ends followed');
  assert.equal(followers(second.thread_id), 0, 'thread 2 ends unfollowed');
  const other = client(ctx, 'uma-order');
  await opened(other);
  const next = await other.sdk.send('Third [[words:3]]', { threadId: first.thread_id });
  await completedRun(uma.sdk, first.thread_id, next.run_id);
});

test('keepThreads bounds the states of threads not followed; followed ones are kept', async (ctx) => {
  const vera = client(ctx, 'vera-keep', { keepThreads: 2 });
  await opened(vera);
  const threads = await Promise.all(Array.from({ length: 5 }, (_, i) => vera.sdk.createThread({ title: `keep ${i}` })));
  await vera.sdk.follow(threads[0]!.id);
  for (const thread of threads.slice(1)) await vera.sdk.history(thread.id);
  assert.equal(vera.sdk.threads.map((t) => t.threadId).sort(), [threads[0]!.id, threads[3]!.id, threads[4]!.id].sort());
  // A state used again moves to the front.
  await vera.sdk.history(threads[3]!.id);
  await vera.sdk.history(threads[1]!.id);
  assert.equal(vera.sdk.threads.map((t) => t.threadId).sort(), [threads[0]!.id, threads[1]!.id, threads[3]!.id].sort());
  await vera.sdk.unfollow(threads[0]!.id);
  assert.equal(vera.sdk.threads.length, 2, 'an unfollowed state counts against the bound');
});

test('a server that closes every connection before the upgrade: connect_failed naming the likely causes, the next attempt by ticket, backoff until it passes connections, then open', async (ctx) => {
  const dropper = await startDroppingFront(ctx.node.gateway!.port);
  ctx.proxies.push(dropper);
  const vic = client(ctx, 'vic-dropped', { url: `ws://127.0.0.1:${dropper.port}/v1/ws` });
  await waitFor(() => dropper.lines.length >= 3 && vic.details.filter((d) => d.code === 'connect_failed').length >= 2, 5_000, 'three dropped attempts');
  // The bearer subprotocol first; after it closed before the upgrade, a ticket (whose request got no
  // answer either, so the subprotocol again).
  assert.equal(dropper.lines.slice(0, 3), ['GET /v1/ws HTTP/1.1', 'POST /v1/ws-ticket HTTP/1.1', 'GET /v1/ws HTTP/1.1']);
  const [first, second] = vic.details.filter((d) => d.code === 'connect_failed');
  assert.equal(first!.closeCode, 1006);
  assert.match(first!.message!, /closed before the WebSocket upgrade/);
  assert.match(first!.message!, /server is unreachable/);
  assert.match(first!.message!, /proxy does not pass WebSocket upgrades/);
  assert.match(first!.message!, /request head, with the token in the subprotocol, was over the server's limit \(16 KB/);
  assert.match(first!.message!, /next attempt sends the token as a ticket/);
  assert.match(second!.message!, /POST \/v1\/ws-ticket failed .*unreachable.*next attempt sends the token in the subprotocol/);
  assert.ok(vic.details.filter((d) => d.code === 'connect_failed').every((d) => d.delayMs !== undefined), 'each waits a backoff delay');
  assert.not.ok(vic.statuses.includes('stopped'), 'it keeps trying');
  assert.equal(vic.refusals.length, 0);

  dropper.dropping = false;
  await opened(vic);
  const ack = await vic.sdk.send('Back again [[words:3]]');
  await completedRun(vic.sdk, ack.thread_id, ack.run_id);
});

test('close() from a status listener while the client is reconnecting is final: no socket, no token request after it', async (ctx) => {
  const dropper = await startDroppingFront(ctx.node.gateway!.port);
  ctx.proxies.push(dropper);
  const quitter = client(ctx, 'quitter', { url: `ws://127.0.0.1:${dropper.port}/v1/ws` });
  let closedAt: { lines: number; tokens: number } | undefined;
  quitter.sdk.on('status', (status) => {
    if (status === 'reconnecting' && !closedAt) {
      quitter.sdk.close();
      closedAt = { lines: dropper.lines.length, tokens: quitter.tokens };
    }
  });
  await waitFor(() => closedAt !== undefined, 5_000, 'the first reconnecting status');
  // Long past the backoff (20-200 ms) and a token round: nothing more may happen.
  await sleep(600);
  assert.is(quitter.sdk.status, 'closed');
  assert.is(dropper.lines.length, closedAt!.lines, 'no connection after close()');
  assert.is(quitter.tokens, closedAt!.tokens, 'no token asked for after close()');
  assert.is(quitter.statuses.at(-1), 'closed', 'closed is the last status');
});

/** A token of about `bytes` characters: a real one, made long by a claim, as an identity provider with many claims makes them. */
function longToken(ctx: Ctx, sub: string, bytes: number): Promise<string> {
  return signToken(ctx.stack.secret, { sub, workspace: 'acme', ttlSeconds: 600, extra: { groups: 'g'.repeat(Math.floor((bytes - 200) * 0.75)) } });
}

/** The WebSocket URL and subprotocols of every socket the client makes. */
function recording(wire: string[], options: WebSocket.ClientOptions = {}): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, options);
      wire.push(`${url.replace(/ticket=[^&]+/, 'ticket=…')} ${JSON.stringify(protocols).replace(/bearer\.[^"]+/, 'bearer.…')}`);
    }
  } as unknown as WebSocketConstructor;
}

test(`a token over ${SUBPROTOCOL_TOKEN_LIMIT} characters goes by ticket without being asked; a short one in the subprotocol`, async (ctx) => {
  const token = await longToken(ctx, 'wes-long-token', 6_000);
  assert.ok(token.length > 5_900 && token.length < 6_200, `a 6 KB token (${token.length})`);
  const wire: string[] = [];
  const wes = client(ctx, 'wes-long-token', { token: () => token, WebSocket: recording(wire) });
  await opened(wes);
  assert.equal(wire, [`${ctx.url}?ticket=… ["chat.v1"]`], 'one socket, with a ticket and only chat.v1');
  const ack = await wes.sdk.send('By ticket [[words:3]]');
  await completedRun(wes.sdk, ack.thread_id, ack.run_id);

  const short: string[] = [];
  const xia = client(ctx, 'xia-short-token', { WebSocket: recording(short) });
  await opened(xia);
  assert.equal(short, [`${ctx.url} ["chat.v1","bearer.…"]`]);
});

/**
 * A WebSocket that behaves as a browser's: it sends the page's cookies with the handshake and
 * cannot read a refused handshake's answer (no `unexpected-response`: a bare 1006).
 */
function browserLike(wire: string[], cookie: string): WebSocketConstructor {
  const Impl = recording(wire, { headers: { cookie } }) as unknown as typeof WebSocket;
  return class implements WebSocketLike {
    private readonly ws: WebSocket;
    onopen: WebSocketLike['onopen'] = null;
    onmessage: WebSocketLike['onmessage'] = null;
    onclose: WebSocketLike['onclose'] = null;
    onerror: WebSocketLike['onerror'] = null;
    constructor(url: string, protocols?: string | string[]) {
      this.ws = new Impl(url, protocols);
      this.ws.onopen = (event) => this.onopen?.(event);
      this.ws.onmessage = (event) => this.onmessage?.({ data: event.data });
      this.ws.onclose = (event) => this.onclose?.({ code: event.code, reason: event.reason });
      this.ws.onerror = (event) => this.onerror?.(event);
    }
    get readyState() {
      return this.ws.readyState;
    }
    send(data: string) {
      this.ws.send(data);
    }
    close(code?: number, reason?: string) {
      this.ws.close(code, reason);
    }
  };
}

test("a request head over the gateway's 16 KB with the token in the subprotocol: the next attempt goes by ticket and connects (browser and Node); forced to the subprotocol, Node's client stops", async (ctx) => {
  // A 1.5 KB token rides in the subprotocol; with 15 KB of cookies the head passes 16 KB, without the token it does not.
  const token = await longToken(ctx, 'yan-cookies', 1_500);
  assert.ok(token.length < SUBPROTOCOL_TOKEN_LIMIT);
  const cookie = Array.from({ length: 150 }, (_, i) => `c${i}=${'v'.repeat(95)}`).join('; ').slice(0, 15_000);
  for (const kind of ['browser', 'node'] as const) {
    const wire: string[] = [];
    const WebSocketImpl = kind === 'browser' ? browserLike(wire, cookie) : recording(wire, { headers: { cookie } });
    const yan = client(ctx, 'yan-cookies', { token: () => token, WebSocket: WebSocketImpl });
    await opened(yan);
    assert.equal(wire, [`${ctx.url} ["chat.v1","bearer.…"]`, `${ctx.url}?ticket=… ["chat.v1"]`], `${kind}: the subprotocol, then a ticket`);
    const failed = yan.details.find((d) => d.code === 'connect_failed');
    assert.ok(failed, `${kind}: the failed attempt is reported`);
    if (kind === 'browser') assert.match(failed.message!, /over the server's limit \(16 KB.*next attempt sends the token as a ticket/);
    else assert.match(failed.message!, /request head was over the server's limit \(HTTP 431\)\. The next attempt sends the token as a ticket/);
    assert.equal(yan.refusals.length, 0);
  }

  const forced = client(ctx, 'yan-cookies', { token: () => token, transport: 'subprotocol', WebSocket: recording([], { headers: { cookie } }) });
  await waitFor(() => forced.sdk.status === 'stopped', 5_000, 'the client to stop');
  assert.equal(forced.refusals.length, 1);
  assert.equal(forced.refusals[0]!.code, 'connect_failed');
  assert.equal(forced.refusals[0]!.httpStatus, 431);
  assert.match(forced.refusals[0]!.message, /HTTP 431/);
});

test.run();
