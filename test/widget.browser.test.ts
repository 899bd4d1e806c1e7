/**
 * The `<convo-chat>` widget in a real browser (Debian's Chromium via playwright-core), on the demo
 * page at `/` of a node in embedded development mode (a generated secret, the embedded store and
 * bus: what serves `/dev/token`, tested in web-routes.test.ts), with its live worker.
 * Screenshots of the final states go to artifacts/browser/.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { buildWeb } from '../scripts/build-web.mjs';
import { useStack, type StackCtx } from './support/fixture.js';
import { ARTIFACTS, launchBrowser, type Browser } from './support/browser.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

interface Ctx extends StackCtx {
  browser: Browser;
  page: Page;
  pageErrors: string[];
}

const test = suite<Ctx>('chat widget in a browser');
useStack(test, {
  // No JWT_SECRET, no DATABASE_URL or REDIS_URL: embedded development mode, which serves /dev/token.
  backend: 'embedded',
  env: { JWT_SECRET: '' },
  setup: async (ctx) => {
    await buildWeb({ quiet: true, types: false });
    ctx.browser = await launchBrowser();
    ctx.page = await ctx.browser.context.newPage();
    ctx.pageErrors = [];
    ctx.page.on('pageerror', (error) => ctx.pageErrors.push(error.message));
    ctx.page.on('dialog', (dialog) => {
      ctx.pageErrors.push(`a dialog opened: ${dialog.message()}`);
      void dialog.dismiss();
    });
  },
  teardown: async (ctx) => {
    await ctx.browser?.close();
  },
});

const chat = (page: Page) => page.locator('convo-chat');
const status = (page: Page) => chat(page).getByRole('status');
const log = (page: Page) => chat(page).getByRole('log');
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });

function threadIdOf(page: Page): string {
  const id = new URL(page.url()).hash.match(/thread=([^&]+)/)?.[1];
  if (!id) throw new Error(`no thread in the page URL ${page.url()}`);
  return decodeURIComponent(id);
}

/** The final assistant text of each run of the thread, oldest first (not the tool-calling steps). */
async function assistantTexts(ctx: Ctx, threadId: string): Promise<string[]> {
  const rows = await ctx.stack.db
    .selectFrom('runs')
    .innerJoin('messages', 'messages.id', 'runs.assistant_message_id')
    .select('messages.content')
    .where('runs.thread_id', '=', threadId)
    .orderBy('runs.created_at')
    .execute();
  return rows.map((r) => r.content);
}

async function runOf(ctx: Ctx, threadId: string, content: string) {
  return ctx.stack.db
    .selectFrom('runs')
    .innerJoin('messages', 'messages.id', 'runs.user_message_id')
    .select(['runs.id', 'runs.status', 'runs.assistant_message_id'])
    .where('runs.thread_id', '=', threadId)
    .where('messages.content', '=', content)
    .executeTakeFirstOrThrow();
}

/** Types into the Message box and sends with Enter, as a person would; returns the new turn. */
async function say(page: Page, text: string) {
  const turns = log(page).locator('.turn');
  const before = await turns.count();
  const box = chat(page).getByRole('textbox', { name: 'Message' });
  await box.click();
  await box.fill(text);
  await box.press('Enter');
  await waitFor(async () => (await turns.count()) > before, 15_000, `the turn for "${text}" to appear`);
  return turns.nth(before);
}

test('the demo page connects with a development token and answers a message sent with the keyboard, tool activity included', async (ctx) => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/`);
  await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
  assert.equal(await log(page).getAttribute('aria-live'), 'polite');
  for (const name of ['Send', 'New conversation']) assert.equal(await chat(page).getByRole('button', { name, exact: true }).count(), 1, name);

  const turn = await say(page, 'What time is it?');
  await turn.locator('.tool', { hasText: 'get_current_time' }).waitFor({ timeout: 15_000 });
  await turn.locator('.text', { hasText: 'The get_current_time tool says' }).waitFor({ timeout: 15_000 });
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 15_000, 'the turn to complete');
  const threadId = threadIdOf(page);
  const [answer] = await assistantTexts(ctx, threadId);
  assert.equal((await turn.locator('.text').innerText()).trim(), answer, 'the whole stored answer, as streamed');
  assert.match(await turn.locator('.tool summary').innerText(), /get_current_time — done/);
  await turn.locator('.tool summary').click();
  assert.match(await turn.locator('.tool').innerText(), /Result/);
  assert.equal((await log(page).locator('.msg.user').allInnerTexts()), ['What time is it?']);
  assert.equal(await chat(page).locator('.threads li').count(), 1, 'the new thread is in the list');
  // Shift+Enter is a new line, not a send.
  const box = chat(page).getByRole('textbox', { name: 'Message' });
  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.type('line two');
  assert.equal(await box.inputValue(), 'line one\nline two');
  await box.fill('');
  await shot(page, '1-tool-answer');
  assert.equal(ctx.pageErrors, []);
});

test('Stop during a slow answer cancels the run, and the turn shows it stopped', async (ctx) => {
  const { page } = ctx;
  const text = 'Tell me a very long story [[words:300]] [[delay:30]]';
  const turn = await say(page, text);
  await turn.locator('.text').waitFor({ timeout: 15_000 });
  const stop = chat(page).getByRole('button', { name: 'Stop', exact: true });
  await stop.click();
  await turn.locator('.note.cancelled', { hasText: 'Stopped' }).waitFor({ timeout: 15_000 });
  const run = await runOf(ctx, threadIdOf(page), text);
  assert.equal(run.status, 'cancelled');
  await waitFor(async () => !(await stop.isVisible()), 5_000, 'Stop to go away');
  const shown = (await turn.locator('.text').innerText()).trim();
  const stored = (await assistantTexts(ctx, threadIdOf(page))).at(-1)!;
  assert.equal(shown, stored, 'the partial text kept, as stored');
  assert.ok(stored.split(' ').length < 300, 'it stopped early');
  await shot(page, '2-stopped');
});

test('the server cuts the connection mid-answer: the indicator goes and comes back, and the text ends complete, not doubled', async (ctx) => {
  const { page } = ctx;
  // Every text the status element shows, from the DOM itself.
  await chat(page).evaluate((element) => {
    const target = element.shadowRoot!.querySelector('[role="status"]')!;
    const seen: string[] = ((window as unknown as { statusTexts: string[] }).statusTexts = []);
    new MutationObserver(() => seen.push(target.textContent ?? '')).observe(target, { childList: true, characterData: true, subtree: true });
  });
  const text = 'Keep talking while I pull the plug [[words:80]] [[delay:25]]';
  const turn = await say(page, text);
  await waitFor(async () => ((await turn.locator('.text').innerText().catch(() => '')).length > 40), 15_000, 'some streamed text');
  const threadId = threadIdOf(page);
  const followers = ctx.node.gateway!.fanout.followersOf(threadId);
  assert.equal(followers.length, 1);
  followers[0]!.connection.ws!.close();
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 20_000, 'the turn to complete');
  const seen = await page.evaluate(() => (window as unknown as { statusTexts: string[] }).statusTexts);
  const away = seen.findIndex((s) => s !== 'Connected');
  assert.ok(away >= 0, `the indicator left Connected: ${JSON.stringify(seen)}`);
  assert.ok(seen.slice(away).includes('Connected'), `and came back: ${JSON.stringify(seen)}`);
  assert.equal(await status(page).innerText(), 'Connected');
  const stored = (await assistantTexts(ctx, threadId)).at(-1)!;
  assert.equal((await turn.locator('.text').innerText()).trim(), stored, 'complete and not doubled');
  const runs = await ctx.stack.db.selectFrom('runs').select('id').where('thread_id', '=', threadId).execute();
  assert.equal(await log(page).locator('.turn').count(), runs.length, 'one turn per run');
  await shot(page, '3-reconnected');
});

test('assistant Markdown is rendered, and HTML in it stays text: an injected <img onerror> never runs', async (ctx) => {
  const { page } = ctx;
  const text = '<img src=x onerror="window.__pwned=1"> **bold** [[words:8]]';
  const turn = await say(page, text);
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 15_000, 'the turn to complete');
  const shown = await turn.locator('.text').innerText();
  assert.ok(shown.includes('<img src=x onerror="window.__pwned=1">'), `the HTML is shown as text: ${shown}`);
  assert.equal(await turn.locator('.text strong').innerText(), 'bold', 'Markdown is rendered');
  assert.equal(await chat(page).locator('img').count(), 0, 'no image element anywhere in the widget');
  const handlers = await chat(page).evaluate((element) =>
    [...element.shadowRoot!.querySelectorAll('*')].flatMap((node) => [...node.attributes].map((a) => a.name)).filter((name) => name.startsWith('on')));
  assert.equal(handlers, [], 'no inline event handler attributes');
  assert.equal((await log(page).locator('.msg.user').last().innerText()), text, 'the user text is shown as typed');
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'the handler never ran');
  await shot(page, '4-markdown');
  assert.equal(ctx.pageErrors, []);
});

test('a reload shows the conversation again, older turns loading as the log scrolls up', async (ctx) => {
  const { page } = ctx;
  const threadId = threadIdOf(page);
  await page.reload();
  await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
  const stored = await assistantTexts(ctx, threadId);
  // The newest page of history first.
  await log(page).locator('.turn').last().locator('.text', { hasText: stored.at(-1)!.slice(0, 30) }).waitFor({ timeout: 15_000 });
  // Older pages as the reader scrolls up, until the first question is back.
  const first = log(page).locator('.msg.user', { hasText: 'What time is it?' });
  await waitFor(async () => {
    if (await first.count()) return true;
    await log(page).evaluate((element) => (element.scrollTop = 0));
    return false;
  }, 20_000, 'the first turn to load').catch(async (error) => {
    await shot(page, '5-history-failed');
    throw error;
  });
  const users = await log(page).locator('.msg.user').allInnerTexts();
  assert.equal(users.length, 4, `every user message once: ${JSON.stringify(users)}`);
  const texts = (await log(page).locator('.turn .text').allInnerTexts()).map((t) => t.trim());
  // As rendered: the one Markdown mark in these answers is the **bold** of the Markdown turn.
  assert.equal(texts, stored.map((t) => t.replaceAll('**', '')), 'every answer once, in order');
  await first.scrollIntoViewIfNeeded();
  await shot(page, '5-history');
  assert.equal(ctx.pageErrors, []);
});

test('New conversation starts an empty thread; the list keeps both', async (ctx) => {
  const { page } = ctx;
  await chat(page).getByRole('button', { name: 'New conversation' }).click();
  assert.equal(await log(page).locator('.msg').count(), 0);
  const turn = await say(page, 'A fresh start [[words:5]]');
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 15_000, 'the turn');
  await waitFor(async () => (await chat(page).locator('.threads li').count()) === 2, 5_000, 'two threads listed');
  assert.equal(await chat(page).locator('.threads li button[aria-current="true"]').count(), 1);
  await shot(page, '6-new-conversation');
});

test('configured by properties as a React app would: a token callback, page styles kept out, events for the host', async (ctx) => {
  const page = await ctx.browser.context.newPage();
  try {
    await page.goto(`${ctx.base}/`);
    await status(page).filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    // The host page's own CSS, aimed at everything the widget has inside.
    await page.addStyleTag({ content: 'button, textarea, [role=log] { background: rgb(255, 0, 0) !important; font-size: 40px !important; }' });
    const seen = await page.evaluate(async () => {
      const events: string[] = ((window as unknown as { secondEvents: string[] }).secondEvents = []);
      const element = document.createElement('convo-chat') as HTMLElement & { token?: () => Promise<string> };
      element.id = 'second';
      element.setAttribute('heading', 'Second chat');
      element.token = async () => (await (await fetch('/dev/token')).json()).token;
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      for (const type of ['convo-ready', 'convo-status', 'convo-message']) {
        document.addEventListener(type, (e) => {
          if ((e.target as Element).id !== 'second') return;
          events.push(type);
          if (type === 'convo-ready') ready();
        });
      }
      document.body.append(element);
      // The page has none of the test's helpers: the event itself, or a 10 s deadline.
      await Promise.race([isReady, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      return events;
    });
    assert.ok(seen.includes('convo-status') && seen.includes('convo-ready'), JSON.stringify(seen));
    const second = page.locator('#second');
    await second.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 10_000 });
    assert.equal(await second.locator('.title').innerText(), 'Second chat');
    const send = second.getByRole('button', { name: 'Send', exact: true });
    const background = await send.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.not.equal(background, 'rgb(255, 0, 0)', 'the page CSS does not reach inside the shadow root');
    // And the widget's CSS does not reach out: a page button keeps the browser's look.
    const outside = await page.evaluate(() => {
      const button = document.createElement('button');
      button.className = 'primary new secondary';
      document.body.append(button);
      return getComputedStyle(button).borderRadius;
    });
    assert.equal(outside, '0px');
    const box = second.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello from the second widget [[words:4]]');
    await box.press('Enter');
    await second.locator('.turn[data-status="completed"]').waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => (window as unknown as { secondEvents: string[] }).secondEvents.includes('convo-message'), undefined, { timeout: 5_000 });
  } finally {
    await page.close();
  }
});

test('a refused token in the browser: read from the close code, shown as signed out, and not retried', async (ctx) => {
  const page = await ctx.browser.context.newPage();
  try {
    await page.goto(`${ctx.base}/`);
    await page.evaluate(() => {
      const state: { calls: number; events: unknown[] } = { calls: 0, events: [] };
      (window as unknown as { refused: typeof state }).refused = state;
      const element = document.createElement('convo-chat') as HTMLElement & { token?: () => Promise<string> };
      element.id = 'refused';
      // Well-formed, but signed with a key this server does not have.
      element.token = async () => {
        state.calls += 1;
        return 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJlLW9mLW5vYm9keS1hdC1hbGwtYXQtYWxs';
      };
      element.addEventListener('convo-error', (e) => state.events.push((e as CustomEvent).detail));
      document.body.append(element);
    });
    const widget = page.locator('#refused');
    await widget.getByRole('status').filter({ hasText: 'Disconnected' }).waitFor({ timeout: 10_000 });
    await widget.getByRole('alert').filter({ hasText: 'signed out' }).waitFor({ timeout: 5_000 });
    const first = await page.evaluate(() => (window as unknown as { refused: { calls: number; events: Array<{ code: string }> } }).refused);
    assert.equal(first.calls, 1);
    assert.equal(first.events.map((e) => e.code), ['unauthenticated'], 'the code came through the close, not a bare 1006');
    // A reconnect loop would ask for a token again within its first backoff window (≤ 500 ms).
    await page.waitForTimeout(1_500);
    assert.equal(await page.evaluate(() => (window as unknown as { refused: { calls: number } }).refused.calls), 1, 'no reconnect loop');
    await page.locator('#refused').screenshot({ path: path.join(ARTIFACTS, '7-refused.png') });
  } finally {
    await page.close();
  }
});

/** A page of its own with one more widget, `#w`, configured by `setup` (run in the page) before it is added. */
async function widgetPage(ctx: Ctx, setup = 'element.setAttribute("token-endpoint", "/dev/token"); element.setAttribute("token-method", "GET");', onPage?: (page: Page) => void): Promise<Page> {
  const page = await ctx.browser.context.newPage();
  page.on('pageerror', (error) => ctx.pageErrors.push(error.message));
  onPage?.(page);
  await page.goto(`${ctx.base}/`);
  await page.evaluate((code) => {
    const element = document.createElement('convo-chat');
    element.id = 'w';
    new Function('element', code)(element);
    document.body.append(element);
  }, setup);
  return page;
}

const followers = (ctx: Ctx, threadId: string) => ctx.node.gateway!.fanout.followersOf(threadId).length;

test('a Markdown image in an answer is a link, not an image: nothing is fetched until someone follows it', async (ctx) => {
  const { page } = ctx;
  const fetched: string[] = [];
  page.on('request', (request) => request.url().includes('/exfil') && fetched.push(request.url()));
  // As a prompt injection would have the model write it: the address carries what it wants out.
  const turn = await say(page, '![leak](/exfil?secret=42) [[words:6]]');
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 15_000, 'the turn to complete');
  const link = turn.locator('.text a', { hasText: 'leak' });
  assert.equal(await link.count(), 1, 'the image is shown as a link named by its alt text');
  assert.match((await link.getAttribute('href'))!, /\/exfil\?secret=42$/);
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');
  assert.equal(await chat(page).locator('img').count(), 0, 'no image element');
  assert.equal(fetched, [], 'nothing fetched');
  await shot(page, '8-image-as-link');
});

test('a streaming turn is aria-busy and updated in place: its text element is kept, not rebuilt, and the busy mark goes when it ends', async (ctx) => {
  const { page } = ctx;
  const turn = await say(page, 'Stream it slowly [[words:120]] [[delay:20]]');
  await turn.locator('.text').waitFor({ timeout: 15_000 });
  assert.equal(await turn.getAttribute('aria-busy'), 'true');
  // Marks on the elements as they are now: a rebuilt turn would lose them.
  await turn.evaluate((element) => {
    (element.querySelector('.text') as HTMLElement).dataset.probe = 'kept';
    (element.querySelector('.agent') as HTMLElement).dataset.probe = 'kept';
  });
  const early = (await turn.locator('.text').innerText()).length;
  await waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 20_000, 'the turn to complete');
  assert.ok((await turn.locator('.text').innerText()).length > early, 'more text arrived after the marks were set');
  assert.equal(await turn.locator('.text[data-probe="kept"]').count(), 1, 'the same text element');
  assert.equal(await turn.locator('.agent[data-probe="kept"]').count(), 1, 'the same agent line');
  assert.equal(await turn.getAttribute('aria-busy'), null, 'not busy once it ended');
  const stored = (await assistantTexts(ctx, threadIdOf(page))).at(-1)!;
  assert.equal((await turn.locator('.text').innerText()).trim(), stored);
});

test('the log is aria-busy while a conversation\'s history loads, and not after', async (ctx) => {
  const threadId = threadIdOf(ctx.page);
  const page = await widgetPage(ctx, `
    element.setAttribute('token-endpoint', '/dev/token');
    element.setAttribute('token-method', 'GET');
    element.setAttribute('history-page', '500');
    element.setAttribute('thread', ${JSON.stringify(threadId)});
    const log = element.shadowRoot.querySelector('[role="log"]');
    // Each change of aria-busy, as the value it had before.
    const seen = (window.busySeen = []);
    new MutationObserver((records) => seen.push(...records.map((r) => r.oldValue))).observe(log, { attributes: true, attributeFilter: ['aria-busy'], attributeOldValue: true });`);
  try {
    const widget = page.locator('#w');
    await widget.locator('.turn[data-status="completed"]').first().waitFor({ timeout: 15_000 });
    // One page holds the whole thread: one load, busy from its start to its end.
    await waitFor(async () => (await page.evaluate(() => (window as unknown as { busySeen: unknown[] }).busySeen.length)) >= 2, 10_000, 'the load to end');
    const seen = await page.evaluate(() => (window as unknown as { busySeen: Array<string | null> }).busySeen);
    assert.equal(seen, [null, 'true'], 'set, then removed');
    assert.equal(await widget.getByRole('log').getAttribute('aria-busy'), null);
  } finally {
    await page.close();
  }
});

test('setting the token property again (React makes a new function every render) does not reconnect; the newest function gives the next token', async (ctx) => {
  const page = await widgetPage(ctx, `
    const calls = (window.tokenCalls = { first: 0, later: 0 });
    const statuses = (window.statuses = []);
    element.addEventListener('convo-status', (e) => statuses.push(e.detail.status));
    element.token = async () => { calls.first += 1; return (await (await fetch('/dev/token')).json()).token; };`);
  try {
    const widget = page.locator('#w');
    await widget.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    const connectionId = await widget.evaluate((element) => (element as unknown as { client: { sessionInfo: { connection_id: string } } }).client.sessionInfo.connection_id);
    await page.evaluate(() => {
      const element = document.querySelector('#w') as HTMLElement & { token: () => Promise<string> };
      const calls = (window as unknown as { tokenCalls: { later: number } }).tokenCalls;
      // Five renders, five new inline functions.
      for (let i = 0; i < 5; i++) element.token = async () => { calls.later += 1; return (await (await fetch('/dev/token')).json()).token; };
    });
    const box = widget.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello after five renders [[words:4]]');
    await box.press('Enter');
    await widget.locator('.turn[data-status="completed"]').waitFor({ timeout: 15_000 });
    const state = await page.evaluate(() => ({ calls: (window as any).tokenCalls, statuses: (window as any).statuses }));
    assert.equal(state.calls, { first: 1, later: 0 }, 'no new token asked for');
    assert.equal(state.statuses.filter((s: string) => s === 'open').length, 1, `one session: ${JSON.stringify(state.statuses)}`);
    assert.equal(await widget.evaluate((element) => (element as any).client.sessionInfo.connection_id), connectionId, 'the same connection');
    // The next connect asks the function set last.
    const threadId = await widget.evaluate((element) => (element as any).client.threads[0].threadId as string);
    ctx.node.gateway!.fanout.followersOf(threadId).find((f) => true)!.connection.ws!.close();
    await waitFor(async () => (await page.evaluate(() => (window as any).tokenCalls.later)) === 1, 10_000, 'the newest function to be asked');
    await widget.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as any).tokenCalls.first), 1);
  } finally {
    await page.close();
  }
});

test('switching conversations quickly follows only the one shown; one left while it streams is let go when its run ends', async (ctx) => {
  const page = await widgetPage(ctx);
  try {
    const widget = page.locator('#w');
    await widget.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    const [a, b, c] = await widget.evaluate(async (element) => {
      const client = (element as any).client;
      const made = [];
      for (let i = 0; i < 3; i++) made.push((await client.createThread({ title: `switch ${i}` })).id as string);
      return made;
    }) as string[];
    // Three clicks in a row, faster than a history page comes back.
    await widget.evaluate((element, ids) => {
      for (const id of ids) (element as HTMLElement & { thread: string }).thread = id;
    }, [a!, b!, c!]);
    await waitFor(() => followers(ctx, c!) === 1, 10_000, 'the shown thread to be followed');
    assert.equal([followers(ctx, a!), followers(ctx, b!)], [0, 0], 'the threads passed through are not followed');
    // A thread left while its answer streams stays followed until the run ends, then is let go.
    const box = widget.getByRole('textbox', { name: 'Message' });
    // Six seconds of answer: still streaming after the switch below, however loaded the machine.
    // (No "time" in it: that word calls the simulator's clock tool, and the answer is one line.)
    await box.fill('Go on at length [[words:300]] [[delay:20]]');
    await box.press('Enter');
    await widget.locator('.turn .text').waitFor({ timeout: 15_000 });
    await widget.evaluate((element, id) => ((element as HTMLElement & { thread: string }).thread = id), a!);
    await waitFor(() => followers(ctx, a!) === 1, 10_000, 'the thread switched to');
    const run = await ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('thread_id', '=', c!).executeTakeFirstOrThrow();
    assert.equal([followers(ctx, c!), run.status], [1, 'running'], 'still followed while it streams');
    await waitFor(async () => (await ctx.stack.db.selectFrom('runs').select('status').where('id', '=', run.id).executeTakeFirstOrThrow()).status === 'completed', 20_000, 'the run to end');
    await waitFor(() => followers(ctx, c!) === 0, 5_000, 'the left thread to be let go');
    assert.equal(followers(ctx, a!), 1);
  } finally {
    await page.close();
  }
});

test('a send that timed out, sent again unchanged, keeps its client_message_id: stored once', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  const page = await widgetPage(ctx, `
    element.setAttribute('server', 'http://127.0.0.1:${proxy.port}');
    element.setAttribute('token-endpoint', '/dev/token');
    element.setAttribute('token-method', 'GET');`);
  try {
    const widget = page.locator('#w');
    await widget.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    const text = 'Am I stored twice? [[words:4]]';
    // The frame reaches the server, no answer comes back: the send times out (15 s).
    proxy.mute();
    const box = widget.getByRole('textbox', { name: 'Message' });
    await box.fill(text);
    await box.press('Enter');
    await widget.getByRole('alert').filter({ hasText: 'did not answer in time' }).waitFor({ timeout: 25_000 });
    // The widget's own first reads (the thread list, a history page) may still have been in flight
    // when the answers stopped: their timeout can be the first alert. The send's follows.
    await waitFor(async () => (await box.inputValue()) === text, 20_000, 'the text back in the box');
    const stored = () => ctx.stack.db.selectFrom('messages').select('id').where('content', '=', text).execute();
    assert.equal((await stored()).length, 1, 'the first one was stored');
    // A new connection, then the person presses Enter again on the same text.
    proxy.cut();
    await waitFor(async () => (await widget.getByRole('status').innerText()) === 'Connected' && proxy.accepted() >= 2, 15_000, 'a new connection');
    await box.press('Enter');
    await widget.locator('.turn[data-status="completed"]').waitFor({ timeout: 15_000 });
    assert.equal((await stored()).length, 1, 'stored once');
    assert.equal(await widget.locator('.msg.user').count(), 1, 'shown once');
  } finally {
    await page.close();
    await proxy.close();
  }
});

test('page styles that are inherited stay out, and the widget keeps its width in a parent that sizes to its content', async (ctx) => {
  const page = await ctx.browser.context.newPage();
  try {
    await page.goto(`${ctx.base}/`);
    await page.addStyleTag({ content: 'body { text-transform: uppercase; letter-spacing: 4px; font-style: italic; white-space: pre; word-spacing: 12px; text-align: right; line-height: 40px; }' });
    const result = await page.evaluate(async () => {
      const widgets: HTMLElement[] = [];
      for (const parentStyle of ['display: inline-block', 'display: flex', 'position: absolute; top: 0; left: 0', 'display: grid; grid-template-columns: auto 1fr']) {
        const parent = document.createElement('div');
        parent.setAttribute('style', parentStyle);
        const element = document.createElement('convo-chat');
        element.setAttribute('token-endpoint', '/dev/token');
        element.setAttribute('token-method', 'GET');
        parent.append(element);
        document.body.append(parent);
        widgets.push(element);
      }
      await new Promise((resolve) => requestAnimationFrame(resolve));
      // The connection indicator: text the widget styles only by its size and colour.
      const style = getComputedStyle(widgets[0]!.shadowRoot!.querySelector('[role="status"]') as HTMLElement);
      return {
        widths: widgets.map((w) => Math.round(w.getBoundingClientRect().width)),
        text: [style.textTransform, style.letterSpacing, style.fontStyle, style.whiteSpace, style.wordSpacing, style.textAlign],
      };
    });
    assert.equal(result.text, ['none', 'normal', 'normal', 'normal', '0px', 'start'], 'nothing inherited from the page');
    for (const width of result.widths) assert.ok(width >= 300, `not collapsed: ${JSON.stringify(result.widths)}`);
  } finally {
    await page.close();
  }
});

test('/convo-client.js is imported as an ES module by a page on another origin', async (ctx) => {
  const page = await ctx.browser.context.newPage();
  try {
    // localhost and 127.0.0.1 are two origins: this page is not the bundle's.
    await page.goto(`http://localhost:${ctx.node.gateway!.port}/elsewhere`);
    const loaded = await page.evaluate(async (url) => {
      const sdk = await import(url);
      return [typeof sdk.ConversationClient, typeof sdk.newClientMessageId, location.origin];
    }, `${ctx.base}/convo-client.js`);
    assert.equal(loaded.slice(0, 2), ['function', 'function']);
    assert.not.equal(loaded[2], ctx.base);
  } finally {
    await page.close();
  }
});

test('a token endpoint that answers 401 (not signed in) is asked once: the widget shows signed out and stops', async (ctx) => {
  const requests: string[] = [];
  // The REST API without a bearer token answers 401, like a host app's token route for a signed-out user.
  const page = await widgetPage(ctx, 'element.setAttribute("token-endpoint", "/v1/threads"); element.setAttribute("token-method", "GET");', (page) => {
    page.on('request', (request) => new URL(request.url()).pathname === '/v1/threads' && requests.push(request.url()));
  });
  try {
    const widget = page.locator('#w');
    await widget.getByRole('status').filter({ hasText: 'Disconnected' }).waitFor({ timeout: 10_000 });
    await widget.getByRole('alert').filter({ hasText: 'signed out' }).waitFor({ timeout: 5_000 });
    // A poll would ask again within its first backoff window (at most 500 ms).
    await page.waitForTimeout(1_500);
    assert.equal(requests.length, 1, 'asked once');
  } finally {
    await page.close();
  }
});

test.run();
