import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJwt } from 'jose';
import { createStack, type TestStack } from './support/stack.js';
import { TestClient, type Frame } from './support/client.js';
import { sleep, waitFor, within } from './support/wait.js';
import { signToken } from '../server/auth.js';
import { CloseCodes } from '../protocol/codes.js';
import type { RunningNode } from '../app/node.js';

/**
 * A connection lives as long as its token: `auth.expiring` ahead of `exp` (a minute, or a fifth of
 * the remaining lifetime when shorter), close 4001 at `exp`, and `auth.refresh` moves `exp` for the
 * same user and workspace only. JWT `exp` has 1-second resolution, so a token signed with a ttl
 * of N seconds lives between N-1 and N seconds: every bound below is taken from the token's real
 * `exp`, never from the ttl.
 */

interface Ctx {
  stack: TestStack;
  node: RunningNode;
  url: string;
  clients: TestClient[];
}

/** Server timers run on the loop's cached clock, which may lag the wall clock by a few ms. */
const TIMER_SLACK_MS = 25;
/** How long after `exp` the 4001 close may be observed. */
const CLOSE_AFTER_EXP_MS = 2_000;

const test = suite<Ctx>('token lifetime (redis)');

test.before(async (ctx) => {
  ctx.stack = await createStack({ backend: 'redis' });
  ctx.node = await ctx.stack.start();
  ctx.url = ctx.stack.wsUrl(ctx.node);
  ctx.clients = [];
});
test.after.each((ctx) => {
  for (const client of ctx.clients.splice(0)) client.close();
});
test.after(async (ctx) => {
  await ctx.stack.close();
});

/** When each `auth.expiring` and the close reached the client (wall clock, same host as the server). */
interface Timeline {
  expiring: Array<{ at: number; expiresAt: string }>;
  closeAt?: number;
}

interface Session {
  client: TestClient;
  token: string;
  /** The token's exp in ms. */
  exp: number;
  /** When session.ready arrived: the server armed its timers just after sending it. */
  readyAt: number;
  ready: Frame;
  timeline: Timeline;
}

function expMs(token: string): number {
  return decodeJwt(token).exp! * 1000;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function connect(ctx: Ctx, sub: string, workspace = 'acme', ttlSeconds = 3600): Promise<Session> {
  const token = await ctx.stack.token(sub, workspace, ttlSeconds);
  const client = await TestClient.connect(ctx.url, { token });
  ctx.clients.push(client);
  const timeline: Timeline = { expiring: [] };
  client.ws.on('message', (data) => {
    let frame: any;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return; // TestClient records it as invalid and fails the next wait.
    }
    if (frame?.type === 'auth.expiring') timeline.expiring.push({ at: Date.now(), expiresAt: frame.payload?.expires_at });
  });
  client.ws.on('close', () => (timeline.closeAt = Date.now()));
  const ready = await client.next((f) => f.type === 'session.ready', 5_000);
  return { client, token, exp: expMs(token), readyAt: Date.now(), ready, timeline };
}

/**
 * Waits until the wall clock passes `at`. Not a synchronisation: the passage of time past a token's
 * exp is itself what the test is about.
 */
async function clockPast(at: number): Promise<void> {
  await sleep(at - Date.now());
}

/** Waits for `auth.expiring` for `exp` and checks it came before exp, after ≥60% of the lifetime left at `from`. */
async function expectExpiring(session: Session, exp: number, from: number, label: string): Promise<number> {
  const frame = await session.client.next(
    (f) => f.type === 'auth.expiring' && f.payload.expires_at === iso(exp),
    exp - Date.now() + 1_000,
  );
  assert.equal(frame.payload, { expires_at: iso(exp) }, `${label}: auth.expiring names the exp`);
  const at = session.timeline.expiring.find((e) => e.expiresAt === iso(exp))!.at;
  const lifetime = exp - from;
  assert.ok(at < exp, `${label}: auth.expiring arrived ${at - exp} ms relative to exp (must be before)`);
  assert.ok(
    at - from >= 0.6 * lifetime,
    `${label}: auth.expiring arrived ${at - from} ms into a ${lifetime} ms lifetime (expected ≥60%, ~80% by the one-fifth rule)`,
  );
  return at;
}

/** Waits for the close and checks it is 4001, not before `exp` and within CLOSE_AFTER_EXP_MS of it. */
async function expectExpiredClose(session: Session, exp: number, label: string): Promise<void> {
  const code = await session.client.waitClose(exp - Date.now() + CLOSE_AFTER_EXP_MS + 1_000);
  assert.equal(code, CloseCodes.unauthenticated, `${label}: closed with 4001`);
  const at = session.timeline.closeAt!;
  assert.ok(at >= exp - TIMER_SLACK_MS, `${label}: closed ${exp - at} ms before exp`);
  assert.ok(at <= exp + CLOSE_AFTER_EXP_MS, `${label}: closed ${at - exp} ms after exp`);
}

function assertNoTokenIn(frames: Frame[], tokens: string[]): void {
  const text = JSON.stringify(frames);
  for (const token of tokens) {
    assert.not.ok(text.includes(token), 'no frame contains the token');
    assert.not.ok(text.includes(token.split('.')[2]!), "no frame contains the token's signature");
  }
}

async function assertUsable(client: TestClient, label: string): Promise<void> {
  const pong = await client.request('ping', {}, 5_000);
  assert.equal(pong.type, 'pong', `${label}: ping answered`);
  assert.is(client.closeCode, undefined, `${label}: socket still open`);
}

test('session.ready carries exp; auth.expiring comes in the last fifth; close 4001 at exp', async (ctx) => {
  const session = await connect(ctx, 'short-lived', 'acme', 4);
  const { ready, exp, readyAt } = session;
  assert.equal(ready.payload.token_expires_at, iso(exp), 'session.ready.token_expires_at is the token exp');
  assert.ok(exp - readyAt > 2_000, `the token has ${exp - readyAt} ms left (ttl 4 s, 1 s exp resolution)`);

  const warnedAt = await expectExpiring(session, exp, readyAt, 'ttl 4 s');
  // One fifth of the remaining lifetime (< 1 minute here): the lead is ~20% of it.
  const lead = exp - warnedAt;
  assert.ok(lead <= 0.25 * (exp - readyAt) + 50, `lead ${lead} ms is about a fifth of ${exp - readyAt} ms`);
  await expectExpiredClose(session, exp, 'ttl 4 s');
  assert.equal(session.timeline.expiring.length, 1, 'exactly one auth.expiring');
  assert.equal(session.client.errors, [], 'no client-side socket errors');
});

test('auth.refresh for the same identity moves exp: alive past the old exp, warned and closed at the new one', async (ctx) => {
  const session = await connect(ctx, 'refresher', 'acme', 2);
  const { client, exp: oldExp } = session;
  const fresh = await ctx.stack.token('refresher', 'acme', 4);
  const newExp = expMs(fresh);
  assert.ok(newExp >= oldExp + 1_000, 'the new token outlives the old one');
  const ack = await client.request('auth.refresh', { token: fresh }, 5_000);
  const refreshedAt = Date.now();
  assert.ok(refreshedAt < oldExp, `the refresh was acked before the old exp (${oldExp - refreshedAt} ms left)`);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  assert.equal(ack.payload, { token_expires_at: iso(newExp) });
  const ackIndex = client.frames.indexOf(ack);

  // 300 ms past the old exp (past the timer the refresh should have cancelled) the socket answers.
  await clockPast(oldExp + 300);
  assert.is(client.closeCode, undefined, 'not closed at the old exp');
  await assertUsable(client, 'past the old exp');
  assert.ok(Date.now() < newExp, 'the ping was answered before the new exp');
  assert.not.ok(
    client.frames.slice(ackIndex).some((f) => f.type === 'auth.expiring' && f.payload.expires_at === iso(oldExp)),
    'no auth.expiring for the old exp after the refresh',
  );

  await expectExpiring(session, newExp, refreshedAt, 'refreshed');
  await expectExpiredClose(session, newExp, 'refreshed');
  const warnings = client.frames.slice(ackIndex).filter((f) => f.type === 'auth.expiring');
  assert.equal(warnings.map((f) => f.payload.expires_at), [iso(newExp)], 'one warning after the refresh, for the new exp');
});

test('auth.refresh for another user or another workspace: error forbidden, then close 4003', async (ctx) => {
  const cases = [
    { label: 'another user, same workspace', sub: 'mallory', workspace: 'acme' },
    { label: 'same user, another workspace', sub: 'victim', workspace: 'other-corp' },
  ];
  for (const { label, sub, workspace } of cases) {
    const session = await connect(ctx, 'victim', 'acme');
    const foreign = await ctx.stack.token(sub, workspace, 3600);
    const answer = await session.client.request('auth.refresh', { token: foreign }, 5_000);
    assert.equal(answer.type, 'error', `${label}: ${JSON.stringify(answer)}`);
    assert.equal(answer.payload.code, 'forbidden', label);
    const code = await session.client.waitClose(5_000);
    assert.equal(code, CloseCodes.forbidden, `${label}: closed with 4003`);
    assert.not.ok(session.client.frames.some((f) => f.type === 'ack'), `${label}: never acked`);
    assertNoTokenIn(session.client.frames, [session.token, foreign]);
  }
});

test('auth.refresh with an expired or foreign-signed token: an error, and the connection stays usable', async (ctx) => {
  const session = await connect(ctx, 'keeper', 'acme');
  const { client } = session;
  const expired = await ctx.stack.token('keeper', 'acme', -10);
  const forged = await signToken(randomBytes(32).toString('hex'), { sub: 'keeper', workspace: 'acme', ttlSeconds: 3600 });

  const late = await client.request('auth.refresh', { token: expired }, 5_000);
  assert.equal(late.type, 'error', JSON.stringify(late));
  assert.equal(late.payload.code, 'token_expired');
  await assertUsable(client, 'after an expired token');

  const bad = await client.request('auth.refresh', { token: forged }, 5_000);
  assert.equal(bad.type, 'error', JSON.stringify(bad));
  assert.equal(bad.payload.code, 'unauthenticated');
  await assertUsable(client, 'after a foreign-signed token');

  // Neither failure changed the connection's lifetime: a valid refresh still works as before.
  const fresh = await ctx.stack.token('keeper', 'acme', 7200);
  const ack = await client.request('auth.refresh', { token: fresh }, 5_000);
  assert.equal(ack.payload, { token_expires_at: iso(expMs(fresh)) });
  assert.not.ok(client.frames.some((f) => f.type === 'auth.expiring'), 'no warning for an hour-long token');
  assertNoTokenIn(client.frames, [session.token, expired, forged, fresh]);
});

test('a token expiring mid-turn: close 4001 at exp, the turn completes, a fresh socket resumes without a gap', async (ctx) => {
  const session = await connect(ctx, 'streamer', 'acme', 3);
  const { client, exp } = session;
  // ~4 s of streaming (400 words, 10 ms apart) from a token with 2-3 s left.
  const ack = await client.request('message.send', { content: 'Stream past my exp [[words:400]] [[delay:10]]' }, 5_000);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const { thread_id, run_id } = ack.payload;
  await client.next((f) => f.type === 'message_delta' && f.payload.run_id === run_id, exp - Date.now() + 1_000);

  await expectExpiredClose(session, exp, 'mid-turn');
  const seen = client.events(thread_id);
  assert.ok(seen.some((e) => e.type === 'message_delta'), 'deltas arrived before the close');
  assert.not.ok(seen.some((e) => e.type === 'agent_completed'), 'the close came while the turn was still streaming');
  const lastSeen = seen[seen.length - 1]!.payload.seq as number;
  assert.equal(seen.map((e) => e.payload.seq), seen.map((_, i) => i + 1), 'gap-free up to the close');

  const again = await connect(ctx, 'streamer', 'acme');
  const sub = await again.client.request('thread.subscribe', { thread_id, after_seq: lastSeen }, 5_000);
  assert.equal(sub.type, 'ack', JSON.stringify(sub));
  const done = await again.client.completed(run_id, 15_000);
  assert.equal(done.payload.status, 'completed');
  const rest = again.client.events(thread_id);
  assert.ok(rest.length > 0, 'the rest of the turn arrived');
  const all = [...seen, ...rest];
  assert.equal(all.map((e) => e.payload.seq), all.map((_, i) => i + 1), 'seen + resumed run without gaps or duplicates');
  const text = all.filter((e) => e.type === 'message_delta' && e.payload.run_id === run_id).map((e) => e.payload.delta).join('');
  assert.equal(text, done.payload.message.content, 'deltas before and after the close join to the final answer');

  await waitFor(async () => {
    const run = await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', run_id).executeTakeFirst();
    return run?.status === 'completed';
  }, 5_000, 'the run to be completed in the store');
  const stored = await within(
    ctx.stack.db.selectFrom('events').select(['seq', 'type']).where('thread_id', '=', thread_id).orderBy('seq').execute(),
    5_000,
    'stored events',
  );
  assert.equal(stored.map((e) => e.seq), all.map((e) => e.payload.seq), 'the store holds exactly the events delivered');
  const message = await ctx.stack.db.selectFrom('messages').select('content').where('id', '=', done.payload.message.id).executeTakeFirstOrThrow();
  assert.equal(message.content, text, 'the stored answer is the whole streamed text');
});

test.run();
