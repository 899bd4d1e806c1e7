/**
 * How `<convo-chat>` connects in a real browser (Debian's Chromium via playwright-core), on a host
 * page of another origin that loads `/convo-chat.js` from the gateway: a long token goes by ticket
 * without the host asking, and a gateway that cannot be reached is shown as such, then recovered
 * from. Browsers report a handshake that fails before the upgrade only as a bare 1006; what the
 * widget shows comes from the SDK's `connect_failed`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { buildWeb } from '../scripts/build-web.mjs';
import { signToken } from '../server/auth.js';
import { ARTIFACTS, launchBrowser, type Browser } from './support/browser.js';
import { startDroppingFront, type DroppingFront } from './support/dropping-front.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor } from './support/wait.js';

interface Ctx extends StackCtx {
  browser: Browser;
  host: http.Server;
  /** The host page's origin (not the gateway's). */
  origin: string;
  fronts: DroppingFront[];
}

const test = suite<Ctx>('chat widget: connecting');
useStack(test, {
  setup: async (ctx) => {
    await buildWeb({ quiet: true, types: false });
    ctx.browser = await launchBrowser();
    ctx.fronts = [];
    // The host app: one page that loads the widget's script from the gateway.
    ctx.host = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><html><head><script src="${ctx.base}/convo-chat.js"></script></head><body></body></html>`);
    });
    await new Promise<void>((resolve) => ctx.host.listen(0, '127.0.0.1', resolve));
    ctx.origin = `http://127.0.0.1:${(ctx.host.address() as AddressInfo).port}`;
  },
  teardown: async (ctx) => {
    // Also after a setup that threw before it made them (no browser, say): the stack still goes.
    for (const front of ctx.fronts ?? []) await front.close();
    await ctx.browser?.close();
    await new Promise((resolve) => ctx.host?.close(resolve));
  },
});

/** A page of the host app with one widget for `server`, whose token property answers `token`; `watch` sees the page first. */
async function hostPage(ctx: Ctx, server: string, token: string, watch?: (page: Page) => void): Promise<Page> {
  const page = await ctx.browser.context.newPage();
  watch?.(page);
  await page.goto(`${ctx.origin}/`);
  await page.evaluate(({ server, token }) => {
    const element = document.createElement('convo-chat') as HTMLElement & { token?: () => string };
    element.setAttribute('server', server);
    element.token = () => token;
    element.addEventListener('convo-status', (event) => ((window as unknown as { statuses: unknown[] }).statuses ??= []).push((event as CustomEvent).detail));
    document.body.append(element);
  }, { server, token });
  return page;
}

const status = (page: Page) => page.locator('convo-chat').getByRole('status');

test('a 6 KB token: the widget asks for a ticket and connects with it, the JWT never in the handshake', async (ctx) => {
  // A real token, made long by a claim, as an identity provider with many claims makes them.
  const token = await signToken(ctx.stack.secret, { sub: 'wen-widget', workspace: 'acme', ttlSeconds: 600, extra: { groups: 'g'.repeat(4_300) } });
  assert.ok(token.length > 5_900, `a 6 KB token (${token.length})`);
  const tickets: string[] = [];
  const sockets: string[] = [];
  const page = await hostPage(ctx, ctx.base, token, (page) => {
    page.on('request', (request) => request.method() === 'POST' && request.url().endsWith('/v1/ws-ticket') && tickets.push(request.url()));
    page.on('websocket', (socket) => sockets.push(socket.url()));
  });
  try {
    await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    assert.equal(tickets.length, 1, 'one ticket asked for (from another origin: CORS lets it through)');
    assert.equal(sockets.length, 1);
    assert.match(sockets[0]!, /\/v1\/ws\?ticket=[^&]+$/);
    const box = page.locator('convo-chat').getByRole('textbox', { name: 'Message' });
    await box.fill('By ticket from the widget [[words:4]]');
    await box.press('Enter');
    await page.locator('convo-chat .turn[data-status="completed"]').waitFor({ timeout: 15_000 });
  } finally {
    await page.close();
  }
});

test('a gateway the browser cannot reach: the widget says so and keeps trying, and connects once it can', async (ctx) => {
  const front = await startDroppingFront(ctx.node.gateway!.port);
  ctx.fronts.push(front);
  const page = await hostPage(ctx, `http://127.0.0.1:${front.port}`, await ctx.stack.token('zoe-widget'));
  try {
    await status(page).filter({ hasText: /^Cannot reach the chat server\. Retrying/ }).waitFor({ timeout: 10_000 });
    const failed = await page.evaluate(() => (window as unknown as { statuses: Array<{ status: string; detail: { code?: string; closeCode?: number; message?: string } }> }).statuses.find((s) => s.detail.code === 'connect_failed'));
    assert.ok(failed, 'convo-status carried connect_failed to the host');
    assert.equal(failed.status, 'reconnecting');
    assert.equal(failed.detail.closeCode, 1006, 'all a browser is told');
    assert.match(failed.detail.message!, /server is unreachable; a proxy does not pass WebSocket upgrades; the request head, with the token in the subprotocol, was over the server's limit/);
    await page.locator('convo-chat').screenshot({ path: path.join(ARTIFACTS, 'connect-failed.png') });
    assert.equal(front.lines[0], 'GET /v1/ws HTTP/1.1');
    front.dropping = false;
    // The default backoff: the next attempt within a few seconds.
    await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    assert.ok(front.lines.length >= 2, `attempts: ${front.lines.join(', ')}`);
  } finally {
    await page.close();
  }
});

test("the page's cookies and the token in the subprotocol pass the gateway's 16 KB: the next attempt goes by ticket and connects", async (ctx) => {
  // 15 KB of cookies for the gateway's host (3.75 KB each, under a browser's 4 KB per cookie); a 1.5 KB
  // token rides in the subprotocol (under 2 KB), which takes the head past 16 KB; a ticket does not.
  await ctx.browser.context.addCookies(Array.from({ length: 4 }, (_, i) => ({ name: `c${i}`, value: 'v'.repeat(3_750), url: ctx.base })));
  const token = await signToken(ctx.stack.secret, { sub: 'ada-cookies', workspace: 'acme', ttlSeconds: 600, extra: { groups: 'g'.repeat(950) } });
  assert.ok(token.length > 1_400 && token.length < 2_048, `a 1.5 KB token (${token.length})`);
  const sockets: string[] = [];
  const page = await hostPage(ctx, ctx.base, token, (page) => page.on('websocket', (socket) => sockets.push(socket.url())));
  try {
    await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    assert.equal(sockets.length, 2, sockets.join(', '));
    assert.not.match(sockets[0]!, /ticket=/, 'first the subprotocol');
    assert.match(sockets[1]!, /\/v1\/ws\?ticket=/, 'then a ticket');
    const statuses = await page.evaluate(() => (window as unknown as { statuses: Array<{ detail: { code?: string; message?: string } }> }).statuses);
    assert.match(statuses.find((s) => s.detail.code === 'connect_failed')!.detail.message!, /next attempt sends the token as a ticket/);
  } finally {
    await page.close();
    await ctx.browser.context.clearCookies();
  }
});

test.run();
