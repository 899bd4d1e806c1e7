/**
 * Hostile and careless clients at the door: connection tickets (single use, short-lived), the
 * Origin allow-list, a flood of invalid frames (4008), and absurdly nested JSON.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { createStack, type TestStack } from './support/stack.js';
import { TestClient } from './support/client.js';
import { sleep } from './support/wait.js';
import { REDIS_URL, uniquePrefix, testRedis } from './support/database.js';
import { MemoryTicketStore } from '../server/tickets/memory-ticket-store.js';
import { RedisTicketStore } from '../server/tickets/redis-ticket-store.js';
import type { TicketStore } from '../server/tickets/index.js';
import type { RunningNode } from '../app/node.js';

interface Ctx {
  stack: TestStack;
  node: RunningNode;
  url: string;
  base: string;
}

const test = suite<Ctx>('hostile input');

test.before(async (ctx) => {
  ctx.stack = await createStack({ env: { ALLOWED_ORIGINS: 'https://app.example.com', BAD_FRAME_LIMIT: '5' } });
  ctx.node = await ctx.stack.start();
  ctx.url = ctx.stack.wsUrl(ctx.node);
  ctx.base = `http://127.0.0.1:${ctx.node.gateway!.port}`;
});
test.after(async (ctx) => {
  await ctx.stack.close();
});

async function ticketFor(ctx: Ctx, token: string | undefined) {
  const res = await fetch(`${ctx.base}/v1/ws-ticket`, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The HTTP answer to an upgrade that is refused (status and JSON body), or 101. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const timer = setTimeout(() => reject(new Error('no answer to the upgrade')), 5_000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.terminate();
      resolve({ status: 101, body: undefined });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
      });
    });
    ws.once('error', () => {});
  });
}

test('a ticket opens one socket as its user, once, and never needs the JWT in the URL', async (ctx) => {
  const token = await ctx.stack.token('ticketed', 'acme');
  const issued = await ticketFor(ctx, token);
  assert.is(issued.status, 201);
  assert.match(issued.body.ticket, /^tk_[A-Za-z0-9_-]{20,}$/);
  const ttl = Date.parse(issued.body.expires_at) - Date.now();
  assert.ok(ttl > 25_000 && ttl <= 30_000, `valid for 30 seconds: ${ttl}`);
  assert.not.ok(issued.body.ticket.includes(token.split('.')[2]!), 'the ticket is not the token');

  const url = `${ctx.url}?ticket=${encodeURIComponent(issued.body.ticket)}`;
  const client = await TestClient.connect(url);
  const ready = await client.next((f) => f.type === 'session.ready');
  assert.equal([ready.payload.user_id, ready.payload.workspace_id], ['ticketed', 'acme']);
  const ack = await client.request('message.send', { content: 'Opened with a ticket' });
  assert.is(ack.type, 'ack');
  await client.completed(ack.payload.run_id);
  client.close();

  const again = await upgradeStatus(url);
  assert.is(again.status, 401, 'a ticket works once');
  assert.is(again.body.code, 'unauthenticated');
  assert.match(again.body.message, /ticket/);
  const forged = await upgradeStatus(`${ctx.url}?ticket=tk_forged`);
  assert.is(forged.status, 401);
  assert.is((await ticketFor(ctx, undefined)).status, 401, 'no ticket without a token');
});

for (const [name, open] of [
  ['memory', async () => new MemoryTicketStore()],
  ['redis', async () => new RedisTicketStore(testRedis())],
] as Array<[string, () => Promise<TicketStore>]>) {
  test(`${name} ticket store: tickets expire and redeem once, even when raced`, async () => {
    const store = await open();
    try {
      const principal = { userId: 'u', workspaceId: 'w', expiresAt: new Date(Date.now() + 60_000), roles: ['admin'] };
      const short = await store.issue(principal, 50);
      const deadline = Date.now() + 2_000;
      let expired = false;
      while (!expired && Date.now() < deadline) {
        await sleep(60); // a lifetime to pass: the ticket's 50 ms
        const peek = await store.issue(principal, 60_000); // unrelated traffic does not revive it
        expired = (await store.redeem(short)) === undefined;
        await store.redeem(peek);
      }
      assert.ok(expired, 'an expired ticket is refused');
      const ticket = await store.issue(principal, 60_000);
      const results = await Promise.all(Array.from({ length: 10 }, () => store.redeem(ticket)));
      const winners = results.filter(Boolean);
      assert.is(winners.length, 1, 'exactly one of ten racing redeems gets it');
      assert.equal(winners[0], principal, 'with the whole principal');
    } finally {
      await store.close();
    }
  });
}

test('Origin allow-list: a browser origin not listed gets 403; a listed one and no Origin at all connect', async (ctx) => {
  const token = await ctx.stack.token('browser', 'acme');
  const auth = { authorization: `Bearer ${token}` };
  const evil = await upgradeStatus(ctx.url, { ...auth, origin: 'https://evil.example.com' });
  assert.is(evil.status, 403);
  assert.is(evil.body.code, 'forbidden');
  assert.is((await upgradeStatus(ctx.url, { ...auth, origin: 'https://app.example.com' })).status, 101);
  assert.is((await upgradeStatus(ctx.url, auth)).status, 101, 'clients without Origin (servers, CLIs) are not affected');
});

test('a flood of invalid frames closes the socket with 4008 after BAD_FRAME_LIMIT', async (ctx) => {
  const client = await TestClient.connect(ctx.url, { token: await ctx.stack.token('flooder', 'acme') });
  await client.next((f) => f.type === 'session.ready');
  for (let i = 0; i < 6; i++) client.send('not json');
  assert.is(await client.waitClose(), 4008);
  const errors = client.frames.filter((f) => f.type === 'error');
  assert.is(errors.length, 6, 'every bad frame was answered before the close');
  assert.ok(errors.every((f) => f.payload.code === 'invalid_frame'));
  // A well-behaved client on another socket is untouched.
  const calm = await TestClient.connect(ctx.url, { token: await ctx.stack.token('calm', 'acme') });
  await calm.next((f) => f.type === 'session.ready');
  assert.is((await calm.request('ping', {})).type, 'pong');
  calm.close();
});

test('absurdly nested JSON is refused before parsing, quickly, and the socket stays usable', async (ctx) => {
  const client = await TestClient.connect(ctx.url, { token: await ctx.stack.token('nester', 'acme') });
  await client.next((f) => f.type === 'session.ready');
  const deep = (n: number) => `{"type":"ping","id":"deep","payload":{"x":${'['.repeat(n)}${']'.repeat(n)}}}`;
  for (const depth of [20, 30_000]) {
    const from = client.frames.length;
    const started = performance.now();
    client.send(deep(depth));
    const error = await client.next((f) => f.type === 'error', 5_000, from);
    assert.is(error.payload.code, 'invalid_frame');
    assert.match(error.payload.message, /nested deeper than 16 levels/);
    assert.ok(performance.now() - started < 1_000, 'answered at once');
  }
  // Brackets inside strings do not count.
  const pong = await client.request('thread.list', { cursor: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' });
  assert.is(pong.type, 'error');
  assert.is(pong.payload.code, 'invalid_request', 'judged by its content, not by the brackets in a string');
  assert.is((await client.request('ping', {})).type, 'pong');
  client.close();
});

test.run();
