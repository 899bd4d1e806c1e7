// @run-alone: asserts delivery latency and buffer bounds (scripts/test.mjs runs it after the others, with nothing beside it)
/**
 * Slow consumers and dead peers (Redis backend). A client that stops reading is cut off with 1013
 * once the server holds more than MAX_BUFFERED_BYTES for it, on both delivery paths: live fan-out
 * (uWS topic publish, then Connection.checkBackpressure) and replay from the log (thread.subscribe
 * → Connection.send in a cork). Nobody else is slowed, and the cut-off client resumes with
 * `after_seq` and ends up with every event exactly once. A peer that stops answering pings is
 * closed by the idle timeout. Afterwards every per-connection structure is back to zero.
 *
 * Traffic is made the way workers make it: appendEvent (seq assigned by the store), then a publish
 * on the thread's broker channel. Most events are under uWS's 16 KiB cork buffer (a topic publish
 * only queues those, written at the end of the loop iteration or every 32 messages), every fifth
 * is over it (written at once). Loopback kernel buffers swallow a few MB first.
 *
 * Also here: a client that keeps reading must not be cut off just because a replay is large, and
 * a burst that ends just past the bound must still get the slow socket closed.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import type { Frame, TestClient } from './support/client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { REDIS_URL, testRedis } from './support/database.js';
import { sleep, waitFor } from './support/wait.js';
import { appendEvent, type StoredEvent } from '../db/events.repository.js';
import { RedisBroker } from '../broker/redis-broker.js';
import { encodeBrokerEvent, threadChannel } from '../broker/index.js';
import type { Connection } from '../server/ws/connection.js';
import type { RunningNode } from '../app/node.js';

const BOUND = 65_536;
const IDLE_S = 8;
/** Generous: two shared cores; a fast client normally gets an event within a few ms. */
const FAST_MAX_LAG_MS = 1_000;
/** Events published after the slow socket was cut off (the resume must bring them). */
const AFTER_CLOSE = 20;
/** Fails the test instead of looping for ever if no close ever comes. */
const MAX_TRAFFIC_BYTES = 60_000_000;
const RUN_ID = 'r_slow_consumer';

interface Ctx extends StackCtx {
  /** The test's own publisher, on the stack's Redis and prefix, as a worker has. */
  broker: RedisBroker;
  /** Every thread used, for the final Redis check. */
  threads: string[];
  idleNode?: RunningNode;
  /** Channels each gateway's broker held before the tests (the worker's run-cancel channel). */
  baseline: Map<RunningNode, number>;
  /** The replay test's thread: megabytes of history. */
  bigThread?: string;
}

const test = suite<Ctx>('slow consumers and dead peers');
useStack(test, {
  backend: 'redis',
  // debug: the gateway logs every close with its code ('disconnected').
  env: { MAX_BUFFERED_BYTES: String(BOUND), LOG_LEVEL: 'debug' },
  setup: (ctx) => {
    ctx.broker = new RedisBroker(testRedis(ctx.stack.prefix));
    ctx.threads = [];
    ctx.baseline = new Map([[ctx.node, brokerChannels(ctx.node)]]);
  },
  teardown: async (ctx) => {
    await ctx.broker.close();
  },
});

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const seqs = (events: Frame[]) => events.map((e) => e.payload.seq as number);

let deltaCounter = 0;
/** A delta of `chars` characters, distinct per call. */
function delta(chars: number): string {
  const head = `#${++deltaCounter}:`;
  return head + 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(chars / 26)).slice(0, Math.max(1, chars - head.length));
}
/** Mostly below uWS's 16 KiB cork buffer (queued by a topic publish), every fifth above it. */
const sizeOf = (i: number) => (i % 5 === 4 ? 24_000 : 12_000);

function append(ctx: Ctx, threadId: string, chars: number): Promise<StoredEvent> {
  return appendEvent(ctx.stack.db, threadId, {
    type: 'message_delta',
    run_id: RUN_ID,
    payload: { message_id: `m_${threadId}`, delta: delta(chars) },
  });
}

/** Exactly what workers/run-emitter.ts does after appending. */
function publish(ctx: Ctx, threadId: string, event: StoredEvent): Promise<void> {
  return ctx.broker.publish(threadChannel(threadId), encodeBrokerEvent(event.seq, event.frame));
}

async function newThread(ctx: Ctx, client: TestClient, title: string): Promise<string> {
  const ack = await client.request('thread.create', { title });
  assert.is(ack.type, 'ack', JSON.stringify(ack));
  const threadId = ack.payload.id as string;
  ctx.threads.push(threadId);
  return threadId;
}

const connectionId = (client: TestClient): string => client.frames.find((f) => f.type === 'session.ready')!.payload.connection_id;

/** The close code the gateway logged for this connection ('disconnected'), once it is closed. */
function serverCloseCode(ctx: Ctx, id: string): number | undefined {
  return ctx.stack.logs.find((l) => l.msg === 'disconnected' && l.connection_id === id)?.code;
}

/** The gateway's followers of a thread (mode, and the Connection behind each). */
function followers(node: RunningNode, threadId: string) {
  return node.gateway!.fanout.followersOf(threadId);
}
function serverConnection(node: RunningNode, threadId: string, id: string): Connection | undefined {
  return followers(node, threadId).find((f) => f.connection.id === id)?.connection;
}

/** The channels the gateway's broker is subscribed to. */
function brokerChannels(node: RunningNode): number {
  return node.gateway!.fanout.brokerChannelCount;
}

/** Stops reading the socket: the kernel buffers fill, then the server's. Writing still works. */
const pause = (client: TestClient) => (client.ws as any)._socket.pause();
const resume = (client: TestClient) => (client.ws as any)._socket.resume();

/** Records when each event of `threadId` reaches `client` (performance.now()). */
function arrivalTimes(client: TestClient, threadId: string): Map<number, number> {
  const arrivals = new Map<number, number>();
  client.ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.payload?.thread_id === threadId && typeof frame.payload.seq === 'number') arrivals.set(frame.payload.seq, performance.now());
  });
  return arrivals;
}

/** The per-event delay between the publish and the fast client's receipt, checked against the bound. */
function assertPrompt(label: string, published: Map<number, number>, arrivals: Map<number, number>): string {
  const lags = [...published].map(([seq, at]) => {
    const arrived = arrivals.get(seq);
    assert.ok(arrived !== undefined, `${label}: seq ${seq} never reached the fast client`);
    return { seq, lag: arrived! - at };
  });
  const worst = lags.reduce((a, b) => (b.lag > a.lag ? b : a));
  const sorted = lags.map((l) => l.lag).sort((a, b) => a - b);
  assert.ok(worst.lag < FAST_MAX_LAG_MS, `${label}: the fast client got seq ${worst.seq} ${worst.lag.toFixed(0)} ms after its publish`);
  return `fast lag p50=${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)}ms max=${worst.lag.toFixed(1)}ms over ${lags.length} events`;
}

/** `events` are exactly the thread's stored events 1..N, in order, byte for byte what is in the table. */
async function assertEqualsLog(ctx: Ctx, label: string, threadId: string, events: Frame[]): Promise<number> {
  const rows = await ctx.stack.db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .orderBy('seq')
    .execute();
  const n = rows.length;
  assert.equal(rows.map((r) => r.seq), range(1, n), `${label}: the table itself is gap-free`);
  const got = seqs(events);
  if (got.length !== n || got.some((s, i) => s !== i + 1)) {
    const dup = got.find((s, i) => got.indexOf(s) !== i);
    const missing = range(1, n).find((s) => !got.includes(s));
    assert.unreachable(`${label}: received ${got.length} events, not 1..${n} exactly once (first duplicate ${dup}, first missing ${missing})`);
  }
  const mismatch = rows.findIndex((row, i) => JSON.stringify({ type: row.type, payload: row.payload }) !== JSON.stringify({ type: events[i]!.type, payload: events[i]!.payload }));
  if (mismatch >= 0) assert.equal({ type: events[mismatch]!.type, payload: events[mismatch]!.payload }, { type: rows[mismatch]!.type, payload: rows[mismatch]!.payload }, `${label}: seq ${mismatch + 1} as stored`);
  return n;
}

/**
 * After the server cut `slow` off: it reads again, gets what was buffered for it and then the
 * 1013 close frame. Its events must be a gap-free prefix 1..k. Then it does what protocol/codes.ts
 * tells a client to do on 1013, reconnect and resume by seq, until it has caught up (a resuming
 * connection cut off in turn resumes again); all its connections together must have received
 * exactly the table's events 1..N.
 */
async function resumeAfterCutOff(ctx: Ctx, slow: TestClient, user: string, threadId: string): Promise<{ k: number; n: number; connections: number }> {
  resume(slow);
  assert.is(await slow.waitClose(10_000), 1013, 'the slow client sees close code 1013 (after everything buffered before it)');
  assert.equal(slow.errors, [], 'a clean close, no socket error');
  const before = slow.events(threadId);
  const k = before.length ? before[before.length - 1]!.payload.seq : 0;
  assert.equal(seqs(before), range(1, k), 'what the slow client got before the close is gap-free from 1');
  const all = [...before];
  let connections = 0;
  let n = Infinity;
  while (all.length < n) {
    // A no-op resume (nothing missed) still goes round once, to check that nothing arrives twice.
    assert.ok(++connections <= 20, `still not caught up after 20 resumes (at seq ${all.length} of ${n})`);
    const from = all.length;
    const again = await connect(ctx, user);
    const ack = await again.request('thread.subscribe', { thread_id: threadId, after_seq: from });
    assert.is(ack.type, 'ack', JSON.stringify(ack));
    n = ack.payload.last_seq as number;
    assert.ok(from <= n, `ack last_seq ${n} < after_seq ${from}`);
    await waitFor(() => from === n || again.events(threadId).some((e) => e.payload.seq === n) || again.closeCode !== undefined, 15_000, `resumed events up to ${n}`);
    if (again.closeCode === undefined) await sleep(200); // a window in which nothing may arrive: anything doubled would arrive now
    else assert.is(again.closeCode, 1013, 'a resuming connection is only ever cut off as a slow consumer');
    const resumed = again.events(threadId);
    assert.equal(seqs(resumed), range(from + 1, from + resumed.length), `resume ${connections} after_seq ${from}: gap-free, each once`);
    all.push(...resumed);
    again.close();
  }
  await assertEqualsLog(ctx, 'slow before close + resumed', threadId, all);
  return { k, n, connections };
}

test('live fan-out: a client that stops reading is closed with 1013 past the bound, nobody else waits, it resumes with exactly 1..N', async (ctx) => {
  const owner = await connect(ctx, 'slowpoke');
  const threadId = await newThread(ctx, owner, 'live flood');
  const slow = await connect(ctx, 'slowpoke');
  const fast = await connect(ctx, 'slowpoke');
  for (const c of [slow, fast]) assert.is((await c.request('thread.subscribe', { thread_id: threadId, after_seq: 0 })).type, 'ack');
  // A first event makes both followers live: everything after it travels by uWS topic publish.
  const first = await append(ctx, threadId, 100);
  await publish(ctx, threadId, first);
  for (const c of [slow, fast]) await c.next((f) => f.payload?.seq === 1 && f.payload.thread_id === threadId);
  assert.equal(followers(ctx.node, threadId).map((f) => f.mode), ['live', 'live'], 'both on the topic');

  const arrivals = arrivalTimes(fast, threadId);
  const published = new Map<number, number>();
  const slowId = connectionId(slow);
  pause(slow);
  let bytes = 0;
  let closedAfter: number | undefined;
  let after = 0;
  for (let i = 0; after < AFTER_CLOSE; i++) {
    assert.ok(bytes < MAX_TRAFFIC_BYTES, `no 1013 after ${bytes} bytes of events`);
    const event = await append(ctx, threadId, sizeOf(i));
    published.set(event.seq, performance.now());
    await publish(ctx, threadId, event);
    bytes += event.frame.length;
    if (closedAfter === undefined && serverCloseCode(ctx, slowId) !== undefined) closedAfter = event.seq;
    if (closedAfter !== undefined) after++;
  }
  const n = first.seq + published.size;
  assert.is(serverCloseCode(ctx, slowId), 1013, 'the gateway closed the slow socket with 1013');

  // The fast client kept its pace throughout: while the slow one stalled, and after.
  // Polled: the client's own listener runs (and wakes `until`) before the one recording arrivals.
  await waitFor(() => arrivals.has(n), 5_000, `the fast client's seq ${n}`);
  const lag = assertPrompt('live', published, arrivals);
  assert.is(fast.closeCode, undefined, 'the fast client is still connected');

  const { k, connections } = await resumeAfterCutOff(ctx, slow, 'slowpoke', threadId);
  assert.ok(k <= closedAfter! && k < n, `the slow client missed the events published after its close (k=${k}, N=${n})`);
  await sleep(100); // a window in which nothing more may arrive: a late or doubled event would show up here
  await assertEqualsLog(ctx, 'fast client', threadId, fast.events(threadId));
  console.log(`[slow-consumer live] ${n} events, ${(bytes / 1e6).toFixed(1)} MB; slow cut off when seq ${closedAfter} was published, having ${k}; resumed with ${connections} connection(s); ${lag}`);
});

test('replay from the log: a client that stops reading during thread.subscribe is closed with 1013, live followers unaffected, it resumes exactly', async (ctx) => {
  const owner = await connect(ctx, 'replayer');
  const threadId = await newThread(ctx, owner, 'replay flood');
  // A history far larger than loopback kernel buffers plus the bound, stored before anyone follows.
  let stored = 0;
  let s = 0;
  for (let i = 0; stored < 12_000_000; i++) {
    const event = await append(ctx, threadId, sizeOf(i));
    stored += event.frame.length;
    s = event.seq;
  }
  const fast = await connect(ctx, 'replayer');
  const fastAck = await fast.request('thread.subscribe', { thread_id: threadId, after_seq: s });
  assert.is(fastAck.payload.last_seq, s);
  const arrivals = arrivalTimes(fast, threadId);

  const slow = await connect(ctx, 'replayer');
  const slowId = connectionId(slow);
  pause(slow);
  const slowAck = slow.request('thread.subscribe', { thread_id: threadId, after_seq: 0 }, 20_000);

  // Live events keep coming while the slow socket replays (they wait in its replay buffer).
  const published = new Map<number, number>();
  let after = 0;
  for (let i = 0; after < AFTER_CLOSE; i++) {
    assert.ok(i < 2_000, 'no 1013 during the replay');
    const event = await append(ctx, threadId, 2_000);
    published.set(event.seq, performance.now());
    await publish(ctx, threadId, event);
    if (serverCloseCode(ctx, slowId) !== undefined) after++;
    await sleep(2); // the pace is the point: live events keep coming during the replay, not all at once
  }
  assert.is(serverCloseCode(ctx, slowId), 1013, 'the gateway closed the replaying socket with 1013');
  const n = s + published.size;
  await waitFor(() => arrivals.has(n), 5_000, `the fast client's seq ${n}`);
  const lag = assertPrompt('replay', published, arrivals);

  const { k, connections } = await resumeAfterCutOff(ctx, slow, 'replayer', threadId);
  assert.is((await slowAck).type, 'ack', 'the ack went out before the replay');
  assert.ok(k < s, `cut off during the replay itself (k=${k}, stored=${s})`);
  const fastEvents = fast.events(threadId);
  assert.equal(seqs(fastEvents), range(s + 1, n), 'the live follower got every live event once');
  ctx.bigThread = threadId;
  console.log(`[slow-consumer replay] ${s} stored events (${(stored / 1e6).toFixed(1)} MB) + ${published.size} live; slow cut off having ${k}; resumed with ${connections} connection(s); ${lag}`);
});

test('a client that keeps reading resumes a backlog far larger than MAX_BUFFERED_BYTES without being cut off', async (ctx) => {
  const threadId = ctx.bigThread!;
  assert.ok(threadId, "needs the replay test's thread");
  const reader = await connect(ctx, 'replayer');
  const started = performance.now();
  const ack = await reader.request('thread.subscribe', { thread_id: threadId, after_seq: 0 });
  const n = ack.payload.last_seq as number;
  await waitFor(() => reader.events(threadId).length >= n || reader.closeCode !== undefined, 20_000, `${n} events`);
  const got = reader.events(threadId).length;
  assert.is(reader.closeCode, undefined, `a reading client was cut off with ${reader.closeCode} after ${got} of ${n} events (${(reader.events(threadId).reduce((a, e) => a + JSON.stringify(e).length, 0) / 1e6).toFixed(1)} MB): the replay writes a 500-event page at once and judges the client by the buffer that leaves`);
  await sleep(200); // a window in which nothing more may arrive: a doubled event would show up here
  await assertEqualsLog(ctx, 'reader', threadId, reader.events(threadId));
  console.log(`[slow-consumer backlog] ${n} events replayed to a reading client in ${(performance.now() - started).toFixed(0)} ms`);
});

test('a burst that ends just past the bound: the socket is closed without waiting for another event', async (ctx) => {
  const owner = await connect(ctx, 'burst');
  const threadId = await newThread(ctx, owner, 'burst');
  const slow = await connect(ctx, 'burst');
  const fast = await connect(ctx, 'burst');
  for (const c of [slow, fast]) assert.is((await c.request('thread.subscribe', { thread_id: threadId, after_seq: 0 })).type, 'ack');
  const first = await append(ctx, threadId, 100);
  await publish(ctx, threadId, first);
  for (const c of [slow, fast]) await c.next((f) => f.payload?.seq === 1 && f.payload.thread_id === threadId);
  const slowId = connectionId(slow);
  const conn = serverConnection(ctx.node, threadId, slowId)!;
  assert.ok(conn, 'the slow connection is a follower');
  pause(slow);
  // One small event at a time, each the last of its burst: after each has reached the fast client
  // (so uWS has written it to every subscriber), the slow socket is either closed or within bounds.
  let bytes = 0;
  let overAt: number | undefined;
  for (let i = 0; !conn.closed; i++) {
    assert.ok(bytes < MAX_TRAFFIC_BYTES, `no 1013 after ${bytes} bytes of events`);
    const event = await append(ctx, threadId, 12_000);
    await publish(ctx, threadId, event);
    bytes += event.frame.length;
    await fast.next((f) => f.payload?.seq === event.seq && f.payload.thread_id === threadId, 5_000);
    await sleep(5); // the pace is the point: the slow socket's buffer is read between events
    if (!conn.closed && conn.ws!.getBufferedAmount() > BOUND) {
      overAt = event.seq;
      const buffered = conn.ws!.getBufferedAmount();
      await waitFor(() => conn.closed, 2_000, `the close of a socket holding ${buffered} bytes (> ${BOUND}) with no further event`).catch((error) => {
        assert.unreachable(`${(error as Error).message}: a stream that pauses right past the bound leaves the slow socket open`);
      });
    }
  }
  assert.is(serverCloseCode(ctx, slowId), 1013);
  const { k, n } = await resumeAfterCutOff(ctx, slow, 'burst', threadId);
  console.log(`[slow-consumer burst] ${n} events; ${overAt === undefined ? 'closed by the event that crossed the bound' : `over the bound after seq ${overAt}, closed with no further event`}; slow had ${k}`);
});

// ---- dead peers ---------------------------------------------------------------------------------

interface RawPeer {
  socket: net.Socket;
  /** Opcodes of the frames the server sent, in order. */
  opcodes: number[];
  texts: string[];
  closed: Promise<number>;
  sendText(text: string): void;
}

/** A hand-made WebSocket client: handshake, frame parsing; it writes only when told to. */
function rawPeer(port: number, token: string): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const opcodes: number[] = [];
    const texts: string[] = [];
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let closedAt!: (at: number) => void;
    const closed = new Promise<number>((r) => (closedAt = r));
    const timer = setTimeout(() => reject(new Error('no 101 from the server')), 5_000);
    socket.on('error', () => {});
    socket.on('close', () => closedAt(performance.now()));
    socket.on('connect', () => {
      socket.write(
        `GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          `Authorization: Bearer ${token}\r\n\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString();
        clearTimeout(timer);
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
        resolve({
          socket,
          opcodes,
          texts,
          closed,
          sendText(text) {
            const payload = Buffer.from(text);
            const mask = randomBytes(4);
            const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
            socket.write(Buffer.concat([Buffer.from([0x81]), length, mask, payload.map((b, i) => b ^ mask[i % 4]!)]));
          },
        });
      }
      // Server frames are unmasked; payloads here are small (no 64-bit lengths).
      while (buffer.length >= 2) {
        let length = buffer[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const opcode = buffer[0]! & 0x0f;
        opcodes.push(opcode);
        if (opcode === 1) texts.push(buffer.subarray(offset, offset + length).toString());
        buffer = buffer.subarray(offset + length);
      }
    });
  });
}

test(`a peer that stops answering pings is closed by the idle timeout (IDLE_TIMEOUT_S=${IDLE_S}), one that answers is not`, async (ctx) => {
  ctx.idleNode = await ctx.stack.start({ worker: false }, { IDLE_TIMEOUT_S: String(IDLE_S) });
  ctx.baseline.set(ctx.idleNode, brokerChannels(ctx.idleNode));
  const gateway = ctx.idleNode.gateway!;
  const url = ctx.stack.wsUrl(ctx.idleNode);
  // A healthy client that sends nothing at all: the ws library answers the server's pings.
  const healthy = await connect(ctx, 'sleepy', 'acme', url);
  const healthySince = performance.now();
  const threadId = await newThread(ctx, healthy, 'dead peer');

  const dead = await rawPeer(gateway.port, await ctx.stack.token('sleepy'));
  dead.sendText(JSON.stringify({ type: 'thread.subscribe', id: 's1', payload: { thread_id: threadId } }));
  await waitFor(() => dead.texts.some((t) => JSON.parse(t).id === 's1'), 5_000, 'the raw peer subscribed');
  const silentSince = performance.now(); // it never writes again
  const deadId = JSON.parse(dead.texts[0]!).payload.connection_id as string;
  assert.is(gateway.connectionCount(), 2);
  assert.is(gateway.fanout.threadCount, 1, 'the dead peer follows the thread');

  const closedAt = await Promise.race([dead.closed, sleep(2 * IDLE_S * 1000 + 2_000).then(() => undefined)]);
  assert.ok(closedAt !== undefined, `the silent peer is still connected ${2 * IDLE_S + 2} s later`);
  const silentMs = closedAt! - silentSince;
  assert.ok(silentMs <= 2 * IDLE_S * 1000, `closed ${silentMs.toFixed(0)} ms after it fell silent (> 2 × ${IDLE_S} s)`);
  assert.ok(silentMs >= 2_000, `closed ${silentMs.toFixed(0)} ms after it fell silent: too soon for an idle timeout`);
  assert.ok(dead.opcodes.includes(0x9), `the server pinged it first (opcodes seen: ${dead.opcodes})`);
  await waitFor(() => serverCloseCode(ctx, deadId) !== undefined, 2_000, 'the close handler');
  await waitFor(() => gateway.connectionCount() === 1 && gateway.fanout.threadCount === 0, 5_000, 'the dead peer released');

  // The healthy one, just as silent, outlives two idle timeouts (a threshold to pass).
  await sleep(Math.max(0, healthySince + 2 * IDLE_S * 1000 + 500 - performance.now()));
  assert.is(healthy.closeCode, undefined, 'the client answering pings is still connected');
  assert.is((await healthy.request('ping', {})).type, 'pong');
  console.log(
    `[slow-consumer idle] silent peer closed ${(silentMs / 1000).toFixed(1)} s after its last frame ` +
      `(server code ${serverCloseCode(ctx, deadId)}, frames seen ${dead.opcodes.map((o) => o.toString(16)).join(',')}); healthy one open ${((performance.now() - healthySince) / 1000).toFixed(1)} s`,
  );
});

test('afterwards, every per-connection structure is back to zero (both gateways, Redis)', async (ctx) => {
  for (const node of [ctx.node, ctx.idleNode!]) {
    const gateway = node.gateway!;
    await waitFor(() => gateway.connectionCount() === 0 && gateway.fanout.threadCount === 0, 5_000, `gateway ${gateway.port} released everything`);
    await waitFor(() => brokerChannels(node) === ctx.baseline.get(node), 5_000, `gateway ${gateway.port}'s broker back to ${ctx.baseline.get(node)} channel(s), has ${brokerChannels(node)}`);
  }
  const redis = new Redis(REDIS_URL);
  try {
    const channels = ctx.threads.map((id) => `${ctx.stack.prefix}${threadChannel(id)}`);
    assert.is(channels.length, 4);
    const subscribed = async () => {
      const reply = (await redis.pubsub('NUMSUB', ...channels)) as Array<string | number>;
      return reply.filter((_, i) => i % 2 === 1).reduce((a: number, b) => a + Number(b), 0);
    };
    await waitFor(async () => (await subscribed()) === 0, 5_000, 'no Redis subscription left');
  } finally {
    redis.disconnect();
  }
});

test.run();
