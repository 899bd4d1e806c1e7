import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import WebSocket from 'ws';
import * as assert from 'uvu/assert';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, base64url, type JWK, type JWTPayload } from 'jose';
import { TestClient } from './support/client.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { signToken } from '../server/auth.js';
import { within as deadline } from './support/wait.js';
import { startJwks, type JwksServer } from './support/jwks.js';
import type { RunningNode } from '../app/node.js';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

// uvu has no timeouts: every wait below has its own deadline.
const DEADLINE_MS = 5_000;
const within = <T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> => deadline(p, ms, what);

// ---- raw handshakes --------------------------------------------------------------------------------

interface HttpAnswer {
  status: number;
  upgraded: boolean;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Placement = 'header' | 'protocol' | 'query';
const PLACEMENTS: Placement[] = ['header', 'protocol', 'query'];

/** One GET /v1/ws with upgrade headers; resolves with the HTTP answer (never upgrades further). */
function handshake(port: number, options: { path?: string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  const path = options.path ?? '/v1/ws';
  return within(
    new Promise<HttpAnswer>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
          ...options.headers,
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, upgraded: true, headers: res.headers, body: '' });
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, upgraded: false, headers: res.headers, body });
        });
      });
      req.on('error', reject);
      req.end();
    }),
    `handshake ${path}`,
  );
}

function placed(token: string, via: Placement): { path?: string; headers?: Record<string, string> } {
  switch (via) {
    case 'header':
      return { headers: { authorization: `Bearer ${token}` } };
    case 'protocol':
      return { headers: { 'sec-websocket-protocol': `chat.v1, bearer.${token}` } };
    case 'query':
      return { path: `/v1/ws?access_token=${encodeURIComponent(token)}` };
  }
}

/** Asserts a 401 `{code, message, retryable}` JSON answer before any upgrade, that says nothing of the token. */
function assertUnauthorized(answer: HttpAnswer, code: 'unauthenticated' | 'token_expired', what: string, token?: string): { code: string; message: string } {
  assert.equal(answer.status, 401, `${what}: status (body ${answer.body})`);
  assert.not.ok(answer.upgraded, `${what}: no upgrade`);
  assert.match(String(answer.headers['content-type']), /^application\/json/, `${what}: JSON content type`);
  let body: { code: string; message: string; retryable: boolean };
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw new Error(`${what}: body is not JSON: ${answer.body}`);
  }
  assert.equal(Object.keys(body).sort(), ['code', 'message', 'retryable'], `${what}: body is {code, message, retryable}`);
  assert.is(body.retryable, false, `${what}: a new token is needed, not a retry`);
  assert.is(body.code, code, `${what}: code (${body.message})`);
  assert.type(body.message, 'string');
  assert.ok(body.message.length > 0, `${what}: message is not empty`);
  if (token) {
    const raw = answer.body + JSON.stringify(answer.headers);
    assert.not.ok(raw.includes(token), `${what}: the answer contains the token`);
    for (const part of token.split('.').filter((p) => p.length >= 8)) {
      assert.not.ok(raw.includes(part), `${what}: the answer contains a part of the token (${part.slice(0, 12)}…)`);
    }
  }
  return body;
}

/** What a client that offered `chat.v1` saw of a refused handshake: the upgrade, frames, then the close. */
interface CloseRefusal {
  frames: Array<{ type: string; payload: any }>;
  code: number;
  reason: string;
}

function refusedByClose(port: number, protocols: string[], path = '/v1/ws'): Promise<CloseRefusal> {
  return within(
    new Promise<CloseRefusal>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols);
      const frames: CloseRefusal['frames'] = [];
      ws.on('message', (data) => frames.push(JSON.parse(String(data))));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of an upgrade and a close`)));
      ws.once('error', reject);
      ws.once('close', (code, reason) => resolve({ frames, code, reason: reason.toString() }));
    }),
    'a refusal by close',
  );
}

/**
 * Asserts a browser-readable refusal: upgraded (chat.v1 negotiated), one `error` frame with the
 * code, then close 4001 whose reason is the code; nothing of the token anywhere.
 */
function assertClosedUnauthorized(refusal: CloseRefusal, code: 'unauthenticated' | 'token_expired', what: string, token?: string): { code: string; message: string } {
  assert.is(refusal.code, 4001, `${what}: close code`);
  assert.is(refusal.reason, code, `${what}: the close reason is the error code`);
  assert.is(refusal.frames.length, 1, `${what}: one frame before the close`);
  const [frame] = refusal.frames;
  assert.is(frame!.type, 'error');
  assert.equal([frame!.payload.code, frame!.payload.retryable], [code, false], `${what}: the error frame`);
  assert.ok(String(frame!.payload.message).length > 0);
  if (token) {
    const raw = JSON.stringify(refusal);
    for (const part of token.split('.').filter((p) => p.length >= 8)) {
      assert.not.ok(raw.includes(part), `${what}: the refusal contains a part of the token (${part.slice(0, 12)}…)`);
    }
  }
  return frame!.payload;
}

/**
 * Presents `token` in each of the three places; every one must be refused the same way: as HTTP
 * 401 in the header and query placements, as a close (4001 + reason) with the subprotocol one,
 * which offers chat.v1 as a browser does.
 */
async function assertRefused(port: number, token: string, code: 'unauthenticated' | 'token_expired', what: string): Promise<string[]> {
  const messages: string[] = [];
  for (const via of PLACEMENTS) {
    const body = via === 'protocol'
      ? assertClosedUnauthorized(await refusedByClose(port, ['chat.v1', `bearer.${token}`]), code, `${what} via ${via}`, token)
      : assertUnauthorized(await handshake(port, placed(token, via)), code, `${what} via ${via}`, token);
    messages.push(body.message);
  }
  return messages;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    }),
    `GET ${path}`,
  );
}

// ---- tokens ------------------------------------------------------------------------------------------

const now = () => Math.floor(Date.now() / 1000);

function hs256(secret: string | Uint8Array, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header }).sign(key);
}

function signed(key: KeyPair['privateKey'], alg: string, kid: string | undefined, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);
}

function unsigned(claims: JWTPayload): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
}

// ---- the suite -----------------------------------------------------------------------------------------

interface Ctx extends StackCtx {
  port: number;
  jwks: JwksServer;
  ed: KeyPair;
  edJwk: JWK;
  /** A node that trusts only the JWKS (no JWT_SECRET). */
  jwksNode?: RunningNode;
}

const test = suite<Ctx>('handshake auth');

const KID = 'test-ed-1';

useStack(test, {
  roles: { gateway: true, worker: false },
  setup: async (ctx) => {
    ctx.port = ctx.node.gateway!.port;
    ctx.ed = await generateKeyPair('EdDSA');
    ctx.edJwk = { ...(await exportJWK(ctx.ed.publicKey)), kid: KID, alg: 'EdDSA', use: 'sig' };
    ctx.jwks = await startJwks([ctx.edJwk]);
  },
  teardown: (ctx) => ctx.jwks.close(),
});

async function connect(ctx: Ctx, url: string, token: string, via: Placement = 'header'): Promise<{ client: TestClient; ready: { user_id: string; workspace_id: string; [k: string]: unknown } }> {
  const client = await TestClient.connect(url, { token, via });
  ctx.clients.push(client);
  const ready = await client.next((f) => f.type === 'session.ready', DEADLINE_MS);
  assert.is(client.frames[0], ready, 'session.ready is the first frame');
  return { client, ready: ready.payload };
}

async function jwksNode(ctx: Ctx): Promise<RunningNode> {
  // JWKS_COOLDOWN_MS=0: a token whose key the set lacks always makes the gateway fetch the set
  // again, so each one below is judged against a set fetched for it (401), never told to come back
  // once the set may be fetched again (503, test/key-rotation.test.ts).
  ctx.jwksNode ??= await ctx.stack.start({ gateway: true, worker: false }, { JWT_SECRET: '  ', JWKS_URL: ctx.jwks.url, JWKS_COOLDOWN_MS: '0' });
  return ctx.jwksNode;
}

test('no token at all: 401 unauthenticated before any upgrade (a chat.v1 client: close 4001)', async (ctx) => {
  const variants: Array<[string, { path?: string; headers?: Record<string, string> }]> = [
    ['nothing', {}],
    ['an empty access_token', { path: '/v1/ws?access_token=' }],
    ['a bearer subprotocol without chat.v1', { headers: { 'sec-websocket-protocol': 'bearer.' } }],
    ['Authorization: Bearer with nothing after it', { headers: { authorization: 'Bearer ' } }],
    ['Authorization: Basic', { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } }],
  ];
  for (const [what, options] of variants) {
    const body = assertUnauthorized(await handshake(ctx.port, options), 'unauthenticated', what);
    if (what === 'Authorization: Basic') assert.not.ok(body.message.includes('YWxpY2U6c2VjcmV0'), 'Basic credentials are not echoed');
  }
  // Offering chat.v1 (as a browser must, to read why it was refused): upgraded, told, closed.
  assertClosedUnauthorized(await refusedByClose(ctx.port, ['chat.v1']), 'unauthenticated', 'only the chat.v1 subprotocol');
  assertClosedUnauthorized(await refusedByClose(ctx.port, ['chat.v1', 'bearer.']), 'unauthenticated', 'an empty bearer subprotocol');
  // A ws client without chat.v1 sees 'unexpected-response' with 401 and the JSON body, never 'open'.
  const ws = new WebSocket(ctx.url);
  try {
    const answer = await within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        ws.once('open', () => reject(new Error('connected without a token')));
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
      }),
      'ws handshake without a token',
    );
    assert.is(answer.status, 401);
    assert.is(JSON.parse(answer.body).code, 'unauthenticated');
  } finally {
    ws.terminate();
  }
});

test('a token signed with another secret: 401 unauthenticated', async (ctx) => {
  const token = await signToken(randomBytes(32).toString('hex'), { sub: 'mallory', workspace: 'acme', ttlSeconds: 600 });
  const [message] = await assertRefused(ctx.port, token, 'unauthenticated', 'bad signature');
  assert.match(message!, /signature/);
});

test("alg 'none' (unsigned) token: 401 unauthenticated", async (ctx) => {
  const token = unsigned({ sub: 'mallory', workspace_id: 'acme', exp: now() + 600, iat: now() });
  assert.ok(token.endsWith('.'), 'empty signature part');
  await assertRefused(ctx.port, token, 'unauthenticated', "alg 'none'");
  // The same with the header's alg spelled differently.
  const shouty = `${base64url.encode(JSON.stringify({ alg: 'NONE', typ: 'JWT' }))}.${token.split('.')[1]}.`;
  await assertRefused(ctx.port, shouty, 'unauthenticated', "alg 'NONE'");
});

test('an expired token: 401 token_expired', async (ctx) => {
  const token = await hs256(ctx.stack.secret, { sub: 'alice', workspace_id: 'acme', iat: now() - 120, exp: now() - 60 });
  const [message] = await assertRefused(ctx.port, token, 'token_expired', 'expired');
  assert.match(message!, /expired/);
});

test('a token without exp: 401 unauthenticated', async (ctx) => {
  const token = await hs256(ctx.stack.secret, { sub: 'alice', workspace_id: 'acme', iat: now() });
  const [message] = await assertRefused(ctx.port, token, 'unauthenticated', 'missing exp');
  assert.match(message!, /\bexp\b/);
});

test('a token without sub, or a malformed token: 401 unauthenticated', async (ctx) => {
  const noSub = await hs256(ctx.stack.secret, { workspace_id: 'acme', iat: now(), exp: now() + 600 });
  await assertRefused(ctx.port, noSub, 'unauthenticated', 'missing sub');
  for (const junk of ['not-a-jwt', 'a.b.c', `${noSub}x`]) await assertRefused(ctx.port, junk, 'unauthenticated', `malformed ${junk.slice(0, 10)}`);
});

test('Authorization: Bearer yields session.ready with the token\'s user and workspace', async (ctx) => {
  const { ready } = await connect(ctx, ctx.url, await ctx.stack.token('alice', 'acme'), 'header');
  assert.is(ready.user_id, 'alice');
  assert.is(ready.workspace_id, 'acme');
  assert.is(ready.protocol, 'chat.v1');
});

test('a bearer.<jwt> subprotocol works and only chat.v1 is negotiated (the token is never echoed)', async (ctx) => {
  const token = await ctx.stack.token('bob', 'globex');
  const { client, ready } = await connect(ctx, ctx.url, token, 'protocol');
  assert.is(client.ws.protocol, 'chat.v1');
  assert.is(ready.user_id, 'bob');
  assert.is(ready.workspace_id, 'globex');
  // The raw 101 answer carries exactly chat.v1 in Sec-WebSocket-Protocol.
  const answer = await handshake(ctx.port, placed(token, 'protocol'));
  assert.is(answer.status, 101);
  assert.ok(answer.upgraded);
  assert.is(answer.headers['sec-websocket-protocol'], 'chat.v1');
  assert.not.ok(JSON.stringify(answer.headers).includes(token), 'the token is not in the 101 headers');
});

test('?access_token= works', async (ctx) => {
  const { ready } = await connect(ctx, ctx.url, await ctx.stack.token('carol', 'initech'), 'query');
  assert.is(ready.user_id, 'carol');
  assert.is(ready.workspace_id, 'initech');
});

test('a token without the workspace claim puts the user in personal:<sub>', async (ctx) => {
  const token = await signToken(ctx.stack.secret, { sub: 'dave', ttlSeconds: 600 });
  for (const via of PLACEMENTS) {
    const { ready } = await connect(ctx, ctx.url, token, via);
    assert.is(ready.user_id, 'dave');
    assert.is(ready.workspace_id, 'personal:dave', via);
  }
});

test('with JWT_ISSUER and JWT_AUDIENCE set, other iss or aud get 401 and the right ones connect', async (ctx) => {
  const node = await ctx.stack.start({ gateway: true, worker: false }, { JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'convo' });
  const port = node.gateway!.port;
  const token = (issuer?: string, audience?: string) =>
    signToken(ctx.stack.secret, { sub: 'erin', workspace: 'acme', ttlSeconds: 600, issuer, audience });

  const [wrongIss] = await assertRefused(port, await token('https://evil.test', 'convo'), 'unauthenticated', 'wrong issuer');
  assert.match(wrongIss!, /\biss\b/);
  const [wrongAud] = await assertRefused(port, await token('https://issuer.test', 'other-service'), 'unauthenticated', 'wrong audience');
  assert.match(wrongAud!, /\baud\b/);
  await assertRefused(port, await token(undefined, 'convo'), 'unauthenticated', 'no issuer');
  await assertRefused(port, await token('https://issuer.test', undefined), 'unauthenticated', 'no audience');

  const { ready } = await connect(ctx, ctx.stack.wsUrl(node), await token('https://issuer.test', 'convo'));
  assert.is(ready.user_id, 'erin');
  assert.is(ready.workspace_id, 'acme');
  // The plain node (no iss/aud configured) still takes the token too: the checks are per config.
  await connect(ctx, ctx.url, await token('https://issuer.test', 'convo'));
});

test('JWKS only (JWT_SECRET blank): an EdDSA token from the key set connects', async (ctx) => {
  const node = await jwksNode(ctx);
  assert.is(node.jwtSecret, undefined, 'a blank JWT_SECRET counts as unset; no HS256 secret is in use');
  assert.is(node.devSecretFile, undefined, 'no development secret was generated');
  const token = await signed(ctx.ed.privateKey, 'EdDSA', KID, { sub: 'frank', workspace_id: 'umbrella', exp: now() + 600 });
  for (const via of PLACEMENTS) {
    const { client, ready } = await connect(ctx, ctx.stack.wsUrl(node), token, via);
    assert.is(ready.user_id, 'frank');
    assert.is(ready.workspace_id, 'umbrella');
    if (via === 'protocol') assert.is(client.ws.protocol, 'chat.v1');
  }
  const personal = await signed(ctx.ed.privateKey, 'EdDSA', KID, { sub: 'gina', exp: now() + 600 });
  const { ready } = await connect(ctx, ctx.stack.wsUrl(node), personal);
  assert.is(ready.workspace_id, 'personal:gina');
  assert.ok(ctx.jwks.requests >= 1, 'the key set was fetched');
});

test('JWKS only: RS256 from an unknown key, or EdDSA signed by another key, gets 401', async (ctx) => {
  const port = (await jwksNode(ctx)).gateway!.port;
  const claims = { sub: 'mallory', workspace_id: 'umbrella', exp: now() + 600 };
  const rsa = await generateKeyPair('RS256');
  await assertRefused(port, await signed(rsa.privateKey, 'RS256', 'rogue-key', claims), 'unauthenticated', 'RS256, unknown kid');
  await assertRefused(port, await signed(rsa.privateKey, 'RS256', KID, claims), 'unauthenticated', 'RS256 claiming the Ed25519 kid');
  await assertRefused(port, await signed(rsa.privateKey, 'RS256', undefined, claims), 'unauthenticated', 'RS256 without kid');
  const otherEd = await generateKeyPair('EdDSA');
  await assertRefused(port, await signed(otherEd.privateKey, 'EdDSA', KID, claims), 'unauthenticated', 'EdDSA by another key, known kid');
  const expired = await signed(ctx.ed.privateKey, 'EdDSA', KID, { ...claims, exp: now() - 60 });
  await assertRefused(port, expired, 'token_expired', 'EdDSA, expired');
  await assertRefused(port, unsigned(claims), 'unauthenticated', "alg 'none' on the JWKS node");
});

test('JWKS only: HS256 tokens are refused, whatever they are signed with (algorithm confusion)', async (ctx) => {
  const port = (await jwksNode(ctx)).gateway!.port;
  const claims = { sub: 'mallory', workspace_id: 'umbrella', exp: now() + 600 };
  const spki = await exportSPKI(ctx.ed.publicKey);
  const keys: Array<[string, string | Uint8Array]> = [
    ['the raw Ed25519 public key bytes', base64url.decode(ctx.edJwk.x!)],
    ['the public key as SPKI PEM', spki],
    ['the public JWK as JSON', JSON.stringify(ctx.edJwk)],
    ['the whole JWKS document', JSON.stringify({ keys: [ctx.edJwk] })],
    ['the JWK x value', ctx.edJwk.x!],
    ['the stack secret (valid on the HS256 node)', ctx.stack.secret],
    ['a random secret', randomBytes(32).toString('hex')],
  ];
  for (const [what, key] of keys) {
    const token = await hs256(key, claims, { kid: KID });
    const [message] = await assertRefused(port, token, 'unauthenticated', `HS256 with ${what}`);
    assert.match(message!, /HS256/, `${what}: refused for its algorithm`);
  }
  // Control: the same HS256 token is good on the node that has the secret.
  const token = await hs256(ctx.stack.secret, claims);
  await connect(ctx, ctx.url, token);
});

test('a client that leaves while its upgrade is being verified does not crash the gateway', async (ctx) => {
  // A fresh node: its key-set cache is empty, so the first handshake has to wait for the JWKS.
  const node = await ctx.stack.start({ gateway: true, worker: false }, { JWT_SECRET: '', JWKS_URL: ctx.jwks.url });
  const port = node.gateway!.port;
  const failures: unknown[] = [];
  const onFailure = (error: unknown) => failures.push(error);
  process.on('uncaughtException', onFailure);
  process.on('unhandledRejection', onFailure);
  try {
    const claims = { sub: 'hasty', workspace_id: 'acme', exp: now() + 600 };
    const good = await signed(ctx.ed.privateKey, 'EdDSA', KID, claims);
    const otherEd = await generateKeyPair('EdDSA');
    const bad = await signed(otherEd.privateKey, 'EdDSA', KID, claims);
    const requestsBefore = ctx.jwks.requests;
    const hold = ctx.jwks.holdNext(300);

    // Two raw upgrades that hang up at once: one would be accepted, one refused, after the wait.
    const closed = [good, bad].map(
      (token) =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => {
            const request = [
              'GET /v1/ws HTTP/1.1',
              `Host: 127.0.0.1:${port}`,
              'Upgrade: websocket',
              'Connection: Upgrade',
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
              'Sec-WebSocket-Version: 13',
              'Sec-WebSocket-Protocol: chat.v1',
              `Authorization: Bearer ${token}`,
              '',
              '',
            ].join('\r\n');
            socket.write(request, () => socket.destroy());
          });
          socket.on('close', () => resolve());
          socket.on('error', reject);
        }),
    );
    await within(Promise.all(closed), 'raw sockets closed');
    await within(hold.arrived, 'the gateway asked the JWKS for keys');
    await within(hold.sent, 'the JWKS answered');
    assert.is(ctx.jwks.requests, requestsBefore + 1, 'one key-set fetch served both handshakes');

    // The gateway still serves: a new client connects (its verification queues behind the
    // abandoned ones on the same key set), and /health answers.
    const { ready } = await connect(ctx, ctx.stack.wsUrl(node), good);
    assert.is(ready.user_id, 'hasty');
    assert.is(node.gateway!.connectionCount(), 1, 'the abandoned upgrades left no connection behind');
    const health = await httpGet(port, '/health');
    assert.is(health.status, 200);
    assert.equal(JSON.parse(health.body), { status: 'ok' });
    assert.equal(failures.map((e) => String((e as Error)?.stack ?? e)), [], 'no uncaught exception or unhandled rejection');
  } finally {
    process.off('uncaughtException', onFailure);
    process.off('unhandledRejection', onFailure);
  }
});

test.run();
