// @run-alone: asserts a calm user's latency during a flood (scripts/test.mjs runs it after the others, with nothing beside it)
/**
 * One tenant must not degrade another. A user with 50 messages of 32,000 characters floods
 * `search` (the most expensive request: full-text ranking and snippets) from three sockets at
 * 45 frames a second each, under the per-socket frame limit, plus REST searches and history pages,
 * while another workspace's user reads a thread over WS and REST every 50 ms. With the default
 * limits (requests in flight per user, REST rate, the search time budget) every one of the other
 * tenant's requests succeeds within a second.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient } from './support/client.js';
import { createStack, type TestStack } from './support/stack.js';
import { rest, restBase } from './support/rest-client.js';
import { sleep } from './support/wait.js';
import type { RunningNode } from '../app/node.js';
import { newId } from '../db/ids.js';
import { DEFAULT_AGENT_ID } from '../db/agents.repository.js';

interface Ctx {
  stack: TestStack;
  node: RunningNode;
}

const test = suite<Ctx>('tenant flood');

test.before(async (ctx) => {
  ctx.stack = await createStack({
    // The limits under test at their defaults (the shared test stack makes them generous).
    env: {
      RATE_LIMIT_IN_FLIGHT_PER_USER: '4',
      RATE_LIMIT_REST_PER_SEC: '20',
      RATE_LIMIT_FRAMES_PER_SEC: '50',
      MAX_QUEUED_FRAMES: '32',
      DATABASE_POOL_SIZE: '10',
    },
  });
  ctx.node = await ctx.stack.start();
});
test.after(async (ctx) => {
  await ctx.stack?.close();
});

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];

/** 32,000 characters of words, every one of which a search for "alpha" matches. */
function bigText(seed: number): string {
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < 31_990; i++) {
    const word = WORDS[(i * 7 + seed) % WORDS.length]!;
    parts.push(word);
    length += word.length + 1;
  }
  return parts.join(' ').slice(0, 32_000);
}

test('a search flood from one tenant leaves another tenant\'s requests fast and successful', async (ctx) => {
  const db = ctx.stack.db;
  const base = restBase(ctx.node);
  const url = ctx.stack.wsUrl(ctx.node);
  // The flooder's history, written directly (50 turns through the model would only slow the test).
  const heavyThread = newId('t');
  await db.insertInto('threads').values({ id: heavyThread, workspace_id: 'heavy', user_id: 'flooder', agent_id: DEFAULT_AGENT_ID, title: 'big', archived_at: null }).execute();
  for (let i = 0; i < 50; i++) {
    await db
      .insertInto('messages')
      .values({ id: newId('m'), thread_id: heavyThread, run_id: null, role: 'user', content: bigText(i), tool_calls: null, tool_call_id: null, client_message_id: null })
      .execute();
  }
  const calmToken = await ctx.stack.token('calm', 'quiet');
  const calm = await TestClient.connect(url, { token: calmToken });
  await calm.next((f) => f.type === 'session.ready');
  const created = await calm.request('thread.create', { title: 'mine' });
  const calmThread = created.payload.id;

  const floodToken = await ctx.stack.token('flooder', 'heavy');
  const open = async () => {
    const client = await TestClient.connect(url, { token: floodToken });
    await client.next((frame) => frame.type === 'session.ready');
    return client;
  };
  // Three sockets; one that is closed for flooding (4008) comes straight back, as a hostile client would.
  const flooders = await Promise.all(Array.from({ length: 3 }, open));
  const retired: TestClient[] = [];
  let reconnects = 0;

  const FLOOD_MS = 8_000;
  const stopAt = Date.now() + FLOOD_MS;
  let sent = 0;
  const floodTimers = flooders.map((_, n) => {
    let reopening = false;
    return setInterval(() => {
      const client = flooders[n]!;
      if (Date.now() > stopAt || reopening) return;
      if (client.closeCode !== undefined) {
        reopening = true;
        retired.push(client);
        reconnects++;
        void open().then((fresh) => (flooders[n] = fresh), () => {}).finally(() => (reopening = false));
        return;
      }
      client.send({ type: 'search', id: `s${n}-${sent++}`, payload: { q: 'alpha bravo', limit: 50 } });
    }, Math.round(1000 / 45));
  });
  let restFlood = 0;
  const restTimer = setInterval(() => {
    if (Date.now() > stopAt) return;
    restFlood++;
    void rest(base, 'GET', '/v1/search?q=alpha&limit=50', { token: floodToken }).catch(() => {});
    void rest(base, 'GET', `/v1/threads/${heavyThread}/history?limit=500`, { token: floodToken }).catch(() => {});
  }, 20);

  // The other tenant: a thread.get over WS and a GET over REST every 50 ms, each timed.
  const latencies: number[] = [];
  const failures: string[] = [];
  let probe = 0;
  while (Date.now() < stopAt) {
    const started = performance.now();
    const [ws, http] = await Promise.all([
      calm.request('thread.get', { thread_id: calmThread }, 5_000).catch((error: Error) => ({ type: 'timeout', payload: { code: error.message } })),
      rest(base, 'GET', `/v1/threads/${calmThread}`, { token: calmToken, timeoutMs: 5_000 }).catch((error: Error) => ({ status: 0, body: { code: error.message } })),
    ]);
    latencies.push(performance.now() - started);
    if (ws.type !== 'ack') failures.push(`ws ${probe}: ${JSON.stringify(ws.payload)}`);
    if (http.status !== 200) failures.push(`rest ${probe}: ${http.status} ${JSON.stringify(http.body)}`);
    probe++;
    await sleep(50); // the pace is the point: a calm user's requests, not a second flood
  }
  for (const timer of [...floodTimers, restTimer]) clearInterval(timer);

  const searches = [...flooders, ...retired].flatMap((c) => c.frames.filter((f) => f.id?.startsWith('s')));
  const answered = searches.filter((f) => f.type === 'ack').length;
  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)]!;
  const worst = sorted[sorted.length - 1]!;
  console.log(`  flood: ${sent} WS searches sent (${answered} answered, ${reconnects} sockets closed for flooding and reopened), ${restFlood * 2} REST requests; the other tenant: ${probe} probes, p50 ${p50.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`);
  assert.ok(answered > 0, 'the flooder is still served, within its share');
  assert.equal(failures, [], 'every request of the other tenant succeeded');
  assert.ok(worst < 1000, `the other tenant's slowest request took ${worst.toFixed(0)} ms`);
  for (const client of [calm, ...flooders, ...retired]) client.close();
});

test.run();
