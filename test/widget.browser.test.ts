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
      for (const type of ['convo-ready', 'convo-status', 'convo-message']) document.addEventListener(type, (e) => (e.target as Element).id === 'second' && events.push(type));
      document.body.append(element);
      const deadline = Date.now() + 10_000;
      while (!events.includes('convo-ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
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

test.run();
