/**
 * The gateway's browser routes (server/web-routes.ts): `GET /dev/token` only in embedded
 * development mode and only to this machine, its tokens accepted under JWT_ISSUER/JWT_AUDIENCE,
 * and the bundles loadable from other origins. The suite's node is embedded (PGlite, in-process
 * bus) with a generated secret, listening on every interface so that a request can also come from
 * a non-loopback address of this machine.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import os from 'node:os';
import { decodeJwt } from 'jose';
import { buildWeb } from '../scripts/build-web.mjs';
import { isLoopbackHost, isLoopbackPeer } from '../server/loopback.js';
import { TestClient } from './support/client.js';
import { createTestDatabase, REDIS_URL, type TestDatabase } from './support/database.js';
import { useStack, type StackCtx } from './support/fixture.js';

interface Ctx extends StackCtx {
  port: number;
  databases: TestDatabase[];
}

const ISSUER = 'https://app.example.com';
const AUDIENCE = 'convo-gateway';

const test = suite<Ctx>('web routes');
useStack(test, {
  backend: 'embedded',
  // No JWT_SECRET: the node generates a development secret. An issuer and audience it must honour.
  env: { JWT_SECRET: '', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, HOST: '0.0.0.0' },
  setup: async (ctx) => {
    await buildWeb({ quiet: true, types: false });
    ctx.port = ctx.node.gateway!.port;
    ctx.databases = [];
  },
});
// After the stack (and the nodes on these databases) closed: hooks run in the order they were added.
test.after(async (ctx) => {
  for (const database of ctx.databases ?? []) await database.drop();
});

/** A GET with a Host header of our choosing (fetch does not let one set it). */
function get(port: number, path: string, host: string, address = '127.0.0.1'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port, path, headers: { host } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('timed out')));
  });
}

test('what counts as this machine: loopback peers and Host names', () => {
  for (const peer of ['127.0.0.1', '127.9.8.7', '::1', '0000:0000:0000:0000:0000:0000:0000:0001', '::ffff:127.0.0.1', '0000:0000:0000:0000:0000:ffff:7f00:0001']) {
    assert.ok(isLoopbackPeer(peer), peer);
  }
  for (const peer of ['192.0.2.2', '10.0.0.1', '::', '::2', 'fd00::2', '0000:0000:0000:0000:0000:ffff:c000:0202', '128.0.0.1', '', 'localhost']) {
    assert.not.ok(isLoopbackPeer(peer), peer);
  }
  for (const host of ['localhost', 'localhost:8080', 'LOCALHOST.', 'app.localhost:3000', '127.0.0.1:8080', '127.1.2.3', '[::1]:8080', '[::1]']) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (const host of [undefined, '', 'example.com', 'localhost.example.com', 'evil.com:8080', '127.0.0.1.nip.io', '192.0.2.2:8080', '[fd00::2]:80', 'localhost:8080:1', '[::1']) {
    assert.not.ok(isLoopbackHost(host), String(host));
  }
});

test('GET /dev/token from this machine: a token for the dev user with the configured issuer and audience, which the server accepts', async (ctx) => {
  const res = await fetch(`http://127.0.0.1:${ctx.port}/dev/token`);
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  const claims = decodeJwt(token);
  assert.equal([claims.sub, claims.iss, claims.aud], ['dev', ISSUER, AUDIENCE]);
  const client = await TestClient.connect(ctx.url, { token });
  ctx.clients.push(client);
  const ready = await client.next((f) => f.type === 'session.ready');
  assert.equal(ready.payload.user_id, 'dev');
  for (const host of [`localhost:${ctx.port}`, `[::1]:${ctx.port}`]) assert.equal((await get(ctx.port, '/dev/token', host)).status, 200, host);
});

test('GET /dev/token with a Host that is not a loopback name (DNS rebinding) is refused', async (ctx) => {
  for (const host of [`evil.example:${ctx.port}`, 'evil.example', `192.0.2.1:${ctx.port}`]) {
    const { status, body } = await get(ctx.port, '/dev/token', host);
    assert.equal(status, 403, host);
    assert.equal(body.code, 'forbidden');
    assert.match(body.message, /machine the server runs on/);
    assert.not.ok('token' in body);
  }
});

test('GET /dev/token from another address of this machine (not loopback) is refused, even with Host: localhost', async (ctx) => {
  const address = Object.values(os.networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  if (!address) throw new Error('this machine has no non-loopback IPv4 address to send the request from');
  const { status, body } = await get(ctx.port, '/dev/token', `localhost:${ctx.port}`, address);
  assert.equal(status, 403);
  assert.equal(body.code, 'forbidden');
  // The page and the bundles are public.
  assert.equal((await fetch(`http://${address}:${ctx.port}/convo-chat.js`)).status, 200);
});

test('the bundles and their source maps may be loaded from another origin (CORS_ORIGIN); the demo page is not shared', async (ctx) => {
  for (const path of ['/convo-client.js', '/convo-client.js.map', '/client.js.map', '/convo-chat.js', '/convo-chat.js.map']) {
    const res = await fetch(`http://127.0.0.1:${ctx.port}${path}`, { headers: { origin: 'https://app.example.com' } });
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
  }
  // The bundle names its map client.js.map (it is built as dist/client.js): that path is served.
  const bundle = await (await fetch(`http://127.0.0.1:${ctx.port}/convo-client.js`)).text();
  assert.match(bundle, /sourceMappingURL=client\.js\.map/);
  const page = await fetch(`http://127.0.0.1:${ctx.port}/`);
  assert.equal(page.headers.get('access-control-allow-origin'), null, 'the demo page is not shared');
  const strict = await ctx.stack.start({ worker: false }, { JWT_SECRET: 's'.repeat(40), CORS_ORIGIN: 'https://app.example.com', ...(await sharedServices(ctx)) });
  const res = await fetch(`http://127.0.0.1:${strict.gateway!.port}/convo-client.js`);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
});

test('GET /dev/token is 404 outside embedded development mode: with DATABASE_URL and REDIS_URL, or with a configured secret', async (ctx) => {
  const shared = await ctx.stack.start({ worker: false }, { ...(await sharedServices(ctx)), HOST: '127.0.0.1' });
  assert.equal(shared.devTokens, false);
  const configured = await ctx.stack.start({ worker: false }, { ...(await sharedServices(ctx)), HOST: '127.0.0.1', JWT_SECRET: 'c'.repeat(40) });
  for (const node of [shared, configured]) {
    const base = `http://127.0.0.1:${node.gateway!.port}`;
    assert.equal((await fetch(`${base}/dev/token`)).status, 404);
    assert.equal((await fetch(`${base}/dev/token`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${base}/`)).status, 200, 'the demo page is still served');
  }
  assert.equal(ctx.node.devTokens, true, 'the embedded node serves it');
});

/** Postgres (a fresh database, dropped with the suite) and Redis: a node that is not embedded. */
async function sharedServices(ctx: Ctx): Promise<Record<string, string>> {
  const database = await createTestDatabase();
  ctx.databases.push(database);
  return { DATABASE_URL: database.url, REDIS_URL };
}

test.run();
