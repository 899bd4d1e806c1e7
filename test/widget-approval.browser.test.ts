/**
 * Tool approval in the `<convo-chat>` widget, in a real browser (Debian's Chromium via
 * playwright-core), on the demo page of a node in embedded development mode with its live worker:
 * an agent (made by an admin over REST) whose calculator needs the user's approval; the turn shows
 * the call with Approve / Deny; the answer goes out with the SDK's `approve`, and every page of the
 * user shows the decision the server stored. Screenshots go to artifacts/browser/.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { buildWeb } from '../scripts/build-web.mjs';
import { signToken } from '../server/auth.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { ARTIFACTS, launchBrowser, type Browser } from './support/browser.js';
import { RestClient } from './support/rest-client.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

interface Ctx extends StackCtx {
  browser: Browser;
  page: Page;
  pageErrors: string[];
  /** The calculator needs approval: within an hour; within a second. */
  careful: string;
  hasty: string;
}

const test = suite<Ctx>('chat widget: tool approval');
useStack(test, {
  // Embedded development mode, which serves the demo page and /dev/token (the `dev` user).
  backend: 'embedded',
  env: { JWT_SECRET: '' },
  setup: async (ctx) => {
    await buildWeb({ quiet: true, types: false });
    const admin = new RestClient(ctx.base, await signToken(ctx.node.jwtSecret!, { sub: 'dev-admin', workspace: 'dev', ttlSeconds: 3600, extra: { role: 'admin' } }));
    const agent = async (name: string, approval_timeout_s: number) => {
      const res = await admin.post('/v1/agents', { name, tools: ['calculator', 'get_current_time'], require_approval: ['calculator'], approval_timeout_s });
      assert.is(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };
    ctx.careful = await agent('Careful', 3600);
    ctx.hasty = await agent('Hasty', 1);
    ctx.browser = await launchBrowser();
    ctx.pageErrors = [];
    ctx.page = await newPage(ctx);
  },
  teardown: async (ctx) => {
    await ctx.browser?.close();
  },
});

const chat = (page: Page) => page.locator('convo-chat').first();
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
const approvalIn = (turn: Locator) => turn.getByRole('group', { name: 'Approval for calculator' });
const button = (scope: Locator, name: string) => scope.getByRole('button', { name, exact: true });

async function newPage(ctx: Ctx): Promise<Page> {
  const page = await ctx.browser.context.newPage();
  page.on('pageerror', (error) => ctx.pageErrors.push(error.message));
  // What the widget tells the page about answers (convo-approval), kept on the page.
  await page.addInitScript(() => {
    const seen: unknown[] = ((window as unknown as { approvals: unknown[] }).approvals = []);
    document.addEventListener('convo-approval', (event) => seen.push((event as CustomEvent).detail));
  });
  return page;
}

/** The demo page, connected, on a new conversation with `agent`. */
async function fresh(page: Page, base: string, agent: string): Promise<void> {
  if (!page.url().startsWith(base)) await page.goto(`${base}/`);
  await chat(page).getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
  await button(chat(page), 'New conversation').click();
  await chat(page).evaluate((element, id) => element.setAttribute('agent', id), agent);
}

/** Sends `text` as a person would (typed, Enter); the new turn once its approval request shows. */
async function ask(page: Page, text: string): Promise<Locator> {
  const turns = chat(page).getByRole('log').locator('.turn');
  const before = await turns.count();
  const box = chat(page).getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await waitFor(async () => (await turns.count()) > before, 15_000, `the turn for "${text}"`);
  const turn = turns.nth(before);
  await approvalIn(turn).waitFor({ timeout: 20_000 });
  return turn;
}

function threadIdOf(page: Page): string {
  const id = new URL(page.url()).hash.match(/thread=([^&]+)/)?.[1];
  if (!id) throw new Error(`no thread in the page URL ${page.url()}`);
  return decodeURIComponent(id);
}

async function runOf(ctx: Ctx, threadId: string) {
  return ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('thread_id', '=', threadId).orderBy('created_at', 'desc').executeTakeFirstOrThrow();
}

/** The run's stored event types, deltas left out. */
async function eventTypes(ctx: Ctx, runId: string): Promise<string[]> {
  const rows = await ctx.stack.db.selectFrom('events').select('type').where('run_id', '=', runId).where('type', '!=', 'message_delta').orderBy('seq').execute();
  return rows.map((r) => r.type);
}

async function finalText(ctx: Ctx, runId: string): Promise<string> {
  const row = await ctx.stack.db.selectFrom('runs').innerJoin('messages', 'messages.id', 'runs.assistant_message_id').select('messages.content').where('runs.id', '=', runId).executeTakeFirstOrThrow();
  return row.content;
}

const completed = (turn: Locator) => waitFor(async () => (await turn.getAttribute('data-status')) === 'completed', 20_000, 'the turn to complete');

/** Each state the approval block shows, as the page saw it (a MutationObserver on the block). */
async function recordStates(approval: Locator): Promise<void> {
  await approval.evaluate((block) => {
    const states: string[] = [];
    const approve = block.querySelector('[part="approve-button"]') as HTMLButtonElement;
    const outcome = block.querySelector('[part="approval-outcome"]')!;
    // No named functions in here: the test's transpiler would wrap them in a helper the page lacks.
    const observer = new MutationObserver(() => {
      states.push(`${(approve.parentElement as HTMLElement).hidden ? 'hidden' : approve.disabled ? 'disabled' : 'enabled'}|${outcome.textContent}`);
    });
    states.push(`enabled|${outcome.textContent}`);
    observer.observe(block, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['disabled', 'hidden'] });
    (block as HTMLElement & { states?: string[] }).states = states;
  });
}

const statesOf = (approval: Locator) => approval.evaluate((block) => [...new Set((block as HTMLElement & { states: string[] }).states)]);

test('a call that needs approval shows the tool, its arguments and expiry with Approve / Deny; Approve runs it and the answer streams', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  const turn = await ask(page, 'calculate 6*7 please');
  const approval = approvalIn(turn);
  assert.match(await approval.innerText(), /The assistant wants to run calculator/);
  assert.equal(await approval.locator('dt').allInnerTexts(), ['expression']);
  assert.equal(await approval.locator('dd').allInnerTexts(), ['6*7']);
  // When it expires, in the page's words and as a machine-readable time.
  const expires = Date.parse((await approval.locator('time').getAttribute('datetime'))!);
  assert.ok(expires > Date.now() + 3_500_000, 'an hour from now');
  assert.match(await approval.innerText(), /Answer by .+; unanswered, it is not run\./);
  assert.equal(await approval.locator('[part="approval-outcome"]').getAttribute('aria-live'), 'polite');
  assert.equal(await turn.getAttribute('data-status'), 'waiting');
  assert.equal(await turn.getAttribute('aria-busy'), null, 'a waiting turn is not busy: its request is read out');
  const threadId = threadIdOf(page);
  const run = await runOf(ctx, threadId);
  await shot(page, 'approval-1-asked');

  await recordStates(approval);
  // By keyboard: Approve focused, Enter presses it.
  await button(approval, 'Approve').focus();
  await page.keyboard.press('Enter');
  await approval.locator('[part="approval-outcome"]', { hasText: 'Approved' }).waitFor({ timeout: 10_000 });
  assert.equal(await statesOf(approval), ['enabled|', 'disabled|Sending…', 'hidden|Approved'], 'disabled while the answer is on its way, then the decision');
  assert.equal(await approval.getAttribute('data-state'), 'approved');
  await completed(turn);
  assert.match(await turn.locator('.tool summary').innerText(), /calculator — done/);
  assert.equal((await turn.locator('.text').innerText()).trim(), 'The calculator tool says 42.');
  assert.equal(await finalText(ctx, run.id), 'The calculator tool says 42.');
  assert.equal(await eventTypes(ctx, run.id), [
    'message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_executing', 'tool_completed', 'agent_completed',
  ]);
  const toolCallId = await approval.getAttribute('data-id');
  assert.equal(await page.evaluate(() => (window as any).approvals), [{ threadId, runId: run.id, toolCallId, toolName: 'calculator', decision: 'approved' }]);
  assert.equal(await button(approval, 'Approve').count(), 0, 'no buttons once decided');
  await shot(page, 'approval-2-approved');
  assert.equal(ctx.pageErrors, []);
});

test('Deny asks for an optional reason (Escape goes back); sent with Enter, the tool never runs and the model is told why. Arguments are text, long ones folded', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  const essay = 'word '.repeat(80).trim();
  const args = JSON.stringify({ expression: '1+1', note: '<img src=x onerror="window.__pwned=1">', essay });
  const turn = await ask(page, `Add these up [[tool:calculator ${args}]]`);
  const approval = approvalIn(turn);
  const run = await runOf(ctx, threadIdOf(page));
  // One line per field (in the order the stored JSON keeps them).
  const names = await approval.locator('dt').allInnerTexts();
  assert.equal([...names].sort(), ['essay', 'expression', 'note']);
  const value = (name: string) => approval.locator('dd').nth(names.indexOf(name));
  assert.equal(await value('expression').innerText(), '1+1');
  assert.equal(await value('note').innerText(), '<img src=x onerror="window.__pwned=1">', 'HTML in an argument is shown as text');
  assert.equal(await chat(page).locator('img').count(), 0, 'no image element');
  const fold = value('essay').locator('details');
  assert.equal(await fold.getAttribute('open'), null, 'the long value is folded');
  assert.equal(await fold.locator('summary').innerText(), `${essay.slice(0, 60)}… (${essay.length} characters)`);
  await fold.locator('summary').click();
  assert.equal(await fold.locator('pre').innerText(), essay, 'and unfolds whole');

  await button(approval, 'Deny').click();
  const reason = approval.getByRole('textbox', { name: 'Reason (optional)' });
  assert.ok(await reason.evaluate((input) => input.matches(':focus')), 'the reason box has the focus');
  assert.equal(await button(approval, 'Approve').count(), 0, 'one choice at a time');
  await reason.press('Escape');
  assert.ok(await button(approval, 'Deny').evaluate((b) => b.matches(':focus')), 'Escape goes back to Deny');
  assert.equal(await reason.isVisible(), false);
  const wait = () => ctx.stack.db.selectFrom('tool_waits').select(['status', 'reason']).where('run_id', '=', run.id).executeTakeFirstOrThrow();
  assert.equal(await wait(), { status: 'pending', reason: null }, 'nothing sent');

  await button(approval, 'Deny').click();
  await reason.fill('not today');
  await reason.press('Enter');
  await approval.locator('[part="approval-outcome"]', { hasText: 'Denied: not today' }).waitFor({ timeout: 10_000 });
  await completed(turn);
  assert.equal(await wait(), { status: 'denied', reason: 'not today' });
  const told = await finalText(ctx, run.id);
  assert.match(told, /denied.*Reason: not today/);
  assert.equal((await turn.locator('.text').innerText()).trim(), told);
  assert.equal(await eventTypes(ctx, run.id), ['message_created', 'agent_started', 'agent_thinking', 'approval_requested', 'approval_resolved', 'tool_completed', 'agent_completed']);
  assert.equal((await page.evaluate(() => (window as any).approvals)).at(-1), {
    threadId: threadIdOf(page), runId: run.id, toolCallId: await approval.getAttribute('data-id'), toolName: 'calculator', decision: 'denied', reason: 'not today',
  });
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  await shot(page, 'approval-3-denied');
  assert.equal(ctx.pageErrors, []);
});

test('two pages of the same user show the same request; answered in one, the other shows the decision', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  const turn = await ask(page, 'calculate 2+3');
  const threadId = threadIdOf(page);
  const reported = (await page.evaluate(() => (window as any).approvals)).length;
  const other = await newPage(ctx);
  try {
    await other.goto(`${ctx.base}/#thread=${encodeURIComponent(threadId)}`);
    const otherApproval = approvalIn(chat(other).locator('.turn').last());
    await button(otherApproval, 'Deny').waitFor({ timeout: 15_000 });
    await button(otherApproval, 'Deny').click();
    await otherApproval.getByRole('textbox', { name: 'Reason (optional)' }).fill('from the other tab');
    await button(otherApproval, 'Send denial').click();
    await otherApproval.locator('[part="approval-outcome"]', { hasText: 'Denied: from the other tab' }).waitFor({ timeout: 10_000 });
    // The first page did nothing: the stored decision reached it.
    const approval = approvalIn(turn);
    await approval.locator('[part="approval-outcome"]', { hasText: 'Denied: from the other tab' }).waitFor({ timeout: 10_000 });
    assert.equal(await button(approval, 'Approve').count(), 0);
    await completed(turn);
    assert.equal((await page.evaluate(() => (window as any).approvals)).length, reported, 'no convo-approval on the page that did not answer');
    assert.equal((await other.evaluate(() => (window as any).approvals)).map((d: any) => d.decision), ['denied']);
  } finally {
    await other.close();
  }
});

test('an answer given elsewhere while this page was offline: its own answer is refused (already_answered) and it shows the stored decision', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  const turn = await ask(page, 'calculate 9-4');
  const threadId = threadIdOf(page);
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  const offline = await newPage(ctx);
  try {
    await offline.goto(`${ctx.base}/`);
    await offline.evaluate(({ server, threadId }) => {
      const element = document.createElement('convo-chat');
      element.id = 'w';
      element.setAttribute('server', server);
      element.setAttribute('token-endpoint', '/dev/token');
      element.setAttribute('token-method', 'GET');
      element.setAttribute('thread', threadId);
      document.body.append(element);
    }, { server: `http://127.0.0.1:${proxy.port}`, threadId });
    const widget = offline.locator('#w');
    const theirs = approvalIn(widget.locator('.turn').last());
    await button(theirs, 'Deny').waitFor({ timeout: 15_000 });
    await recordStates(theirs);
    // The connection goes; the person denies anyway (the answer waits for a connection).
    proxy.refuse(true);
    proxy.cut();
    await widget.getByRole('status').filter({ hasNotText: /^Connected$/ }).waitFor({ timeout: 10_000 });
    await button(theirs, 'Deny').click();
    await theirs.getByRole('textbox', { name: 'Reason (optional)' }).fill('too late');
    await button(theirs, 'Send denial').click();
    await theirs.locator('[part="approval-outcome"]', { hasText: 'Sending…' }).waitFor({ timeout: 5_000 });
    // Meanwhile the first page approves.
    await button(approvalIn(turn), 'Approve').click();
    await approvalIn(turn).locator('[part="approval-outcome"]', { hasText: 'Approved' }).waitFor({ timeout: 10_000 });
    proxy.refuse(false);
    await theirs.locator('[part="approval-outcome"]', { hasText: /^Approved$/ }).waitFor({ timeout: 30_000 });
    await completed(widget.locator('.turn').last());
    // Sending…, then (in whichever order they come) "Already answered" and the stored decision: never its own.
    const states = (await statesOf(theirs)).map((state) => state.split('|')[1]);
    assert.equal(states.filter((text) => !['', 'Sending…', 'Already answered', 'Approved'].includes(text!)), [], JSON.stringify(states));
    assert.is(states.at(-1), 'Approved');
    const run = await runOf(ctx, threadId);
    const resolved = await ctx.stack.db.selectFrom('tool_waits').selectAll().where('run_id', '=', run.id).executeTakeFirstOrThrow();
    assert.equal([resolved.status, resolved.reason], ['approved', null], 'the first answer stands');
    assert.equal(await offline.evaluate(() => (window as any).approvals), [], 'the refused answer is not reported as a decision');
    await offline.locator('#w').screenshot({ path: path.join(ARTIFACTS, 'approval-4-answered-elsewhere.png') });
  } finally {
    await offline.close();
    await proxy.close();
  }
});

test('the connection drops while the answer is on its way: the error shows and the buttons come back, then the stored decision arrives', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  const page = await newPage(ctx);
  try {
    await page.goto(`${ctx.base}/`);
    await page.evaluate(({ server, agent }) => {
      const element = document.createElement('convo-chat');
      element.id = 'w';
      element.setAttribute('server', server);
      element.setAttribute('token-endpoint', '/dev/token');
      element.setAttribute('token-method', 'GET');
      element.setAttribute('agent', agent);
      document.body.append(element);
    }, { server: `http://127.0.0.1:${proxy.port}`, agent: ctx.careful });
    const widget = page.locator('#w');
    await widget.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
    const box = widget.getByRole('textbox', { name: 'Message' });
    await box.fill('calculate 5*5');
    await box.press('Enter');
    const turn = widget.locator('.turn').last();
    const approval = approvalIn(turn);
    await button(approval, 'Approve').waitFor({ timeout: 20_000 });
    await recordStates(approval);
    // The answer reaches the server; its reply does not come back before the connection drops.
    proxy.mute();
    await button(approval, 'Approve').click();
    await approval.locator('[part="approval-outcome"]', { hasText: 'Sending…' }).waitFor({ timeout: 5_000 });
    proxy.cut();
    await approval.locator('[part="approval-outcome"]', { hasText: /^Approved$/ }).waitFor({ timeout: 20_000 });
    const states = await statesOf(approval);
    const failed = states.indexOf('enabled|The connection dropped before the server answered: your answer may or may not have arrived.');
    assert.ok(failed > states.indexOf('disabled|Sending…'), `the error with the buttons back: ${JSON.stringify(states)}`);
    assert.is(states.at(-1), 'hidden|Approved');
    await completed(turn);
    assert.equal(await page.evaluate(() => (window as any).approvals), [], 'no answer of this page was confirmed');
  } finally {
    await page.close();
    await proxy.close();
  }
});

test('a reload while a request waits shows its buttons again, and the answer after it works', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  await ask(page, 'calculate 8/2');
  await page.reload();
  await chat(page).getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 15_000 });
  const turn = chat(page).locator('.turn').last();
  const approval = approvalIn(turn);
  await button(approval, 'Approve').waitFor({ timeout: 15_000 });
  assert.equal(await approval.locator('dd').allInnerTexts(), ['8/2']);
  await button(approval, 'Approve').click();
  await approval.locator('[part="approval-outcome"]', { hasText: 'Approved' }).waitFor({ timeout: 10_000 });
  await completed(turn);
  assert.equal((await turn.locator('.text').innerText()).trim(), 'The calculator tool says 4.');
  await shot(page, 'approval-5-after-reload');
});

test('Stop while a request waits: the run ends, the block says it was cancelled and the tool never runs', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.careful);
  const turn = await ask(page, 'calculate 3*3');
  const approval = approvalIn(turn);
  await button(chat(page), 'Stop').click();
  await approval.locator('[part="approval-outcome"]', { hasText: 'Cancelled: the run was stopped' }).waitFor({ timeout: 10_000 });
  await turn.locator('.note.cancelled', { hasText: 'Stopped' }).waitFor({ timeout: 10_000 });
  assert.equal(await button(approval, 'Approve').count(), 0);
  const run = await runOf(ctx, threadIdOf(page));
  assert.is(run.status, 'cancelled');
  assert.not.ok((await eventTypes(ctx, run.id)).includes('tool_executing'));
});

test('a request nobody answers expires: the block says Expired and the turn ends', async (ctx) => {
  const { page } = ctx;
  await fresh(page, ctx.base, ctx.hasty);
  const turn = await ask(page, 'calculate 1+2');
  const approval = approvalIn(turn);
  // The worker's sweep stores the expiry (every 5 s).
  await approval.locator('[part="approval-outcome"]', { hasText: 'Expired' }).waitFor({ timeout: 20_000 });
  assert.equal(await approval.getAttribute('data-state'), 'expired');
  assert.equal(await button(approval, 'Approve').count(), 0);
  await completed(turn);
  assert.match(await finalText(ctx, (await runOf(ctx, threadIdOf(page))).id), /expired/);
  await shot(page, 'approval-6-expired');
  assert.equal(ctx.pageErrors, []);
});

test.run();
