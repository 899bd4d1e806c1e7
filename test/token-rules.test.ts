/**
 * Rules a validly signed token must still meet, the same on every path that takes a token: the
 * upgrade (header, query, subprotocol with a close), POST /v1/ws-ticket, REST and auth.refresh.
 *
 * - a workspace claim can never name a personal workspace (`personal:<sub>` belongs to users
 *   whose token has no workspace claim);
 * - a token is at most LIMITS.tokenChars (8,192) characters everywhere, so a socket opened with a
 *   token can always be refreshed with one of the same size.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SignJWT, type JWTPayload } from 'jose';
import { useStack, type StackCtx } from './support/fixture.js';
import { present, type Form } from './support/auth-probe.js';
import { rest } from './support/rest-client.js';
import { TestClient } from './support/client.js';
import { signToken } from '../server/auth.js';
import { LIMITS } from '../protocol/limits.js';

interface Ctx extends StackCtx {
  port: number;
}

const test = suite<Ctx>('token rules');
useStack(test, { roles: { gateway: true, worker: false }, setup: (ctx) => void (ctx.port = ctx.node.gateway!.port) });

const UPGRADES: Form[] = ['upgrade', 'query', 'close'];

function hs256(secret: string, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

/**
 * A valid token of exactly `chars` characters for `sub` in `workspace`. A base64url part cannot
 * have every length, so both the payload (a `pad` claim) and the header (a `kid`) are padded.
 */
async function tokenOfLength(secret: string, chars: number, sub: string, workspace: string): Promise<string> {
  const base = (await hs256(secret, { sub, workspace_id: workspace, pad: '' }, { kid: 'k' })).length;
  const estimate = Math.floor(((chars - base) * 3) / 4);
  for (let kid = 1; kid <= 4; kid++) {
    for (let pad = Math.max(0, estimate - 8); pad <= estimate + 8; pad++) {
      const token = await hs256(secret, { sub, workspace_id: workspace, pad: 'x'.repeat(pad) }, { kid: 'k'.repeat(kid) });
      if (token.length === chars) return token;
    }
  }
  throw new Error(`no token of ${chars} characters`);
}

/** A socket of `sub` in `workspace` past session.ready. */
async function socket(ctx: Ctx, sub: string, workspace: string): Promise<TestClient> {
  const client = await TestClient.connect(ctx.url, { token: await ctx.stack.token(sub, workspace) });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  return client;
}

test("a workspace claim naming a personal workspace is refused on every path, naming the claim; bob's workspace stays his", async (ctx) => {
  // bob has no workspace claim: he works in personal:bob, and has a thread there.
  const bob = await signToken(ctx.stack.secret, { sub: 'bob', ttlSeconds: 600 });
  const created = await rest(ctx.base, 'POST', '/v1/threads', { token: bob, body: { title: 'bob only' } });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is((await present(ctx.port, 'upgrade', bob)).workspaceId, 'personal:bob');

  const claims: Array<[string, string]> = [['mallory', 'personal:bob'], ['bob', 'personal:bob'], ['mallory', 'personal:'], ['mallory', 'personal:mallory']];
  for (const [sub, workspace] of claims) {
    const token = await signToken(ctx.stack.secret, { sub, workspace, ttlSeconds: 600 });
    const what = `${sub} claiming ${workspace}`;
    for (const form of [...UPGRADES, 'rest'] as Form[]) {
      const answer = await present(ctx.port, form, token);
      assert.equal([answer.status, answer.code, answer.retryable], [401, 'unauthenticated', false], `${what}, ${form}: ${JSON.stringify(answer)}`);
      assert.match(answer.message!, /workspace_id claim must not start with 'personal:'/, `${what}, ${form}`);
      if (form === 'close') assert.equal([answer.closeCode, answer.closeReason], [4001, 'unauthenticated']);
    }
    const ticket = await rest(ctx.base, 'POST', '/v1/ws-ticket', { token });
    assert.equal([ticket.status, ticket.body.code], [401, 'unauthenticated'], `${what}, ticket`);
    assert.match(ticket.body.message, /workspace_id claim/);
    // auth.refresh on a live socket of the same user: refused, and the socket carries on.
    const client = await socket(ctx, sub, 'acme');
    const refused = await client.request('auth.refresh', { token });
    assert.equal([refused.type, refused.payload.code], ['error', 'unauthenticated'], `${what}, auth.refresh`);
    assert.match(refused.payload.message, /workspace_id claim/);
    assert.is((await client.request('ping', {})).type, 'pong');
  }

  // Only the prefix is kept: other names are workspaces like any.
  const lookalike = await signToken(ctx.stack.secret, { sub: 'mallory', workspace: 'personal-bob', ttlSeconds: 600 });
  assert.is((await present(ctx.port, 'upgrade', lookalike)).workspaceId, 'personal-bob');
  const list = await rest(ctx.base, 'GET', '/v1/threads', { token: bob });
  assert.equal(list.body.threads.map((t: { title: string }) => t.title), ['bob only'], "bob's workspace holds only his thread");
});

test('the claim named by JWT_WORKSPACE_CLAIM is the one checked, and named in the refusal', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: false }, { JWT_WORKSPACE_CLAIM: 'https://example.com/org' });
  const port = node.gateway!.port;
  const token = await signToken(ctx.stack.secret, { sub: 'mallory', workspace: 'personal:bob', workspaceClaim: 'https://example.com/org', ttlSeconds: 600 });
  const answer = await present(port, 'upgrade', token);
  assert.equal([answer.status, answer.code], [401, 'unauthenticated']);
  assert.match(answer.message!, /https:\/\/example\.com\/org claim must not start with 'personal:'/);
  // A personal: value under another claim is not a workspace claim here.
  const other = await signToken(ctx.stack.secret, { sub: 'mallory', workspace: 'personal:bob', ttlSeconds: 600 });
  assert.is((await present(port, 'upgrade', other)).workspaceId, 'personal:mallory');
});

test(`a token of ${LIMITS.tokenChars} characters works everywhere, auth.refresh included; one character more is refused everywhere`, async (ctx) => {
  const limit = LIMITS.tokenChars;
  const fits = await tokenOfLength(ctx.stack.secret, limit, 'big', 'acme');
  const over = await tokenOfLength(ctx.stack.secret, limit + 1, 'big', 'acme');
  assert.equal([fits.length, over.length], [limit, limit + 1]);

  for (const form of UPGRADES) {
    const answer = await present(ctx.port, form, fits);
    assert.ok(answer.accepted, `${form}, ${limit} characters: ${JSON.stringify(answer)}`);
    assert.is(answer.userId, 'big');
  }
  assert.ok((await present(ctx.port, 'rest', fits)).accepted, `REST, ${limit} characters`);
  const ticket = await rest(ctx.base, 'POST', '/v1/ws-ticket', { token: fits });
  assert.is(ticket.status, 201, `ticket, ${limit} characters: ${JSON.stringify(ticket.body)}`);

  // The socket opened with the largest token refreshes with one as large.
  const client = await TestClient.connect(ctx.url, { token: fits });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  const again = await tokenOfLength(ctx.stack.secret, limit, 'big', 'acme');
  const ack = await client.request('auth.refresh', { token: again });
  assert.is(ack.type, 'ack', `auth.refresh, ${limit} characters: ${JSON.stringify(ack)}`);

  const longer = new RegExp(`longer than the ${limit} characters allowed`);
  for (const form of [...UPGRADES, 'rest'] as Form[]) {
    const answer = await present(ctx.port, form, over);
    assert.equal([answer.status, answer.code, answer.retryable], [401, 'unauthenticated', false], `${form}, ${limit + 1} characters: ${JSON.stringify(answer)}`);
    assert.match(answer.message!, longer, form);
  }
  const refusedTicket = await rest(ctx.base, 'POST', '/v1/ws-ticket', { token: over });
  assert.equal([refusedTicket.status, refusedTicket.body.code], [401, 'unauthenticated']);
  assert.match(refusedTicket.body.message, longer);
  const refused = await client.request('auth.refresh', { token: over });
  assert.is(refused.type, 'error', JSON.stringify(refused));
  assert.match(refused.payload.message, longer);
  assert.is((await client.request('ping', {})).type, 'pong', 'the socket carries on');
});

test.run();
