/**
 * The shipped WebSocketAgent (`convo-gateway/agui`, dist/agui.js as `npm install` builds it, with
 * @ag-ui/client and rxjs from the application) against a real stack: runAgent over `agui.v1` ends
 * with the stored messages; a connection cut mid-run is opened again and continued from the last
 * seq and part, the run's text arriving once; an approval is an interrupt answered by `resume`;
 * connectAgent joins a thread through the prelude; a bad token fails the run with its code. The
 * agent's own pipeline runs verifyEvents on everything it is given, so a wrong join would fail it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import type { BaseEvent } from '@ag-ui/core';
import { signToken } from '../server/auth.js';
import { buildWeb } from '../scripts/build-web.mjs';
import type * as Agui from '../protocol/agui-client/index.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { checkEvents, comparable, storedAsAgui } from './support/agui.js';
import { ROOT } from './support/process.js';
import { RestClient } from './support/rest-client.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { within } from './support/wait.js';

interface Ctx extends StackCtx {
  agui: typeof Agui;
  bundle: { gzipBytes: number; inputs: string[] };
}

const test = suite<Ctx>('WebSocketAgent (convo-gateway/agui)');
useStack(test, {
  setup: async (ctx) => {
    ctx.bundle = (await buildWeb({ quiet: true })).find((b) => b.name === 'agui.js')!;
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    ctx.agui = await import(pathToFileURL(path.join(ROOT, pkg.exports['./agui'].import)).href);
  },
});

function agent(ctx: Ctx, token: string | (() => Promise<string>), options: { threadId?: string; url?: string } = {}) {
  return new ctx.agui.WebSocketAgent({
    url: options.url ?? ctx.url,
    token,
    threadId: options.threadId ?? `t-${randomUUID()}`,
    WebSocket: WebSocket as unknown as Agui.SocketClass,
  });
}

async function run(subject: Agui.WebSocketAgent, parameters: Parameters<Agui.WebSocketAgent['runAgent']>[0] = {}, onEvent?: (e: BaseEvent) => void) {
  const seen: BaseEvent[] = [];
  await within(subject.runAgent(parameters, { onEvent: ({ event }) => void (seen.push(event), onEvent?.(event)) }), 30_000, 'the run');
  return seen;
}

test('the bundle holds only the agent: @ag-ui/client and rxjs stay the application\'s (peer dependencies)', async (ctx) => {
  for (const input of ctx.bundle.inputs) assert.match(input, /^protocol\/agui-client\//);
  const code = await readFile(path.join(ROOT, 'dist/agui.js'), 'utf8');
  assert.match(code, /from\s*"@ag-ui\/client"/);
  assert.match(code, /from\s*"rxjs"/);
  assert.ok(ctx.bundle.gzipBytes < 4096, `${ctx.bundle.gzipBytes} bytes gzipped`);
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  for (const peer of ['@ag-ui/client', 'rxjs']) assert.ok(pkg.peerDependencies[peer] && pkg.peerDependenciesMeta[peer].optional, peer);
});

test('runAgent over agui.v1: a tool turn, then a text turn; the agent ends with the stored messages', async (ctx) => {
  const token = await ctx.stack.token('alice');
  const subject = agent(ctx, token);
  subject.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: '[[say:Let me see]] calculate 6*7' });
  const seen = await run(subject);
  checkEvents(seen);
  assert.ok(seen.some((e) => e.type === 'TOOL_CALL_RESULT'));
  subject.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'thanks [[words:4]]' });
  await run(subject);
  assert.equal(comparable(subject.messages), await storedAsAgui(ctx.stack.db, subject.threadId));
});

test('a connection cut mid-run: the agent connects again, continues from the last seq and part, and gets the text once', async (ctx) => {
  const proxy = await startTcpProxy(ctx.node.gateway!.port);
  try {
    let asked = 0;
    const token = async () => (asked++, ctx.stack.token('alice'));
    const subject = agent(ctx, token, { url: `ws://127.0.0.1:${proxy.port}/v1/ws` });
    subject.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'a long answer [[words:60]] [[delay:15]]' });
    let texts = 0;
    let cut = false;
    const seen = await run(subject, {}, (event) => {
      if (event.type === 'TEXT_MESSAGE_CONTENT' && ++texts === 10 && !cut) {
        cut = true;
        proxy.cut();
      }
    });
    assert.ok(cut, 'the connection was cut mid-run');
    assert.is(proxy.accepted(), 2, 'one reconnection');
    assert.is(asked, 2, 'a token asked for each connection');
    assert.equal(comparable(subject.messages), await storedAsAgui(ctx.stack.db, subject.threadId));
    const deltas = seen.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => (e as BaseEvent & { delta: string }).delta).join('');
    assert.is(deltas, (subject.messages.at(-1) as { content: string }).content, 'every delta once');
    const seqs = seen.map((e) => (e.metadata as { seq: number; part?: number }));
    for (let i = 1; i < seqs.length; i++) {
      const [a, b] = [seqs[i - 1]!, seqs[i]!];
      assert.ok(b.seq > a.seq || (b.seq === a.seq && (b.part ?? 0) > (a.part ?? 0)), `in order, once each: ${JSON.stringify([a, b])}`);
    }
  } finally {
    await proxy.close();
  }
});

test('an approval over the socket: the run ends with an interrupt, resume goes on; connectAgent joins through the prelude', async (ctx) => {
  const admin = new RestClient(ctx.base, await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 3600, extra: { role: 'admin' } }));
  const guarded = await admin.post('/v1/agents', { name: 'Guarded', tools: ['calculator'], require_approval: ['calculator'] });
  const token = await ctx.stack.token('alice');
  const thread = await new RestClient(ctx.base, token).post('/v1/threads', { agent_id: guarded.body.id });
  const subject = agent(ctx, token, { threadId: thread.body.id });
  subject.addMessage({ id: `u-${randomUUID()}`, role: 'user', content: 'calculate 6*7 please' });
  const asked = await run(subject);
  const finished = asked.at(-1) as BaseEvent & { outcome: { type: string } };
  assert.is(finished.outcome.type, 'interrupt');
  assert.is(subject.pendingInterrupts.length, 1);

  // Another client joins meanwhile: the prelude leaves it with the same interrupt to answer.
  const watcher = agent(ctx, token, { threadId: thread.body.id });
  await within(watcher.connectAgent(), 15_000, 'the join');
  assert.equal(watcher.pendingInterrupts.map((i) => i.id), subject.pendingInterrupts.map((i) => i.id));

  const resumed = await run(subject, { resume: [{ interruptId: subject.pendingInterrupts[0]!.id, status: 'resolved' }] });
  assert.match((resumed.find((e) => e.type === 'TOOL_CALL_RESULT') as BaseEvent & { content: string }).content, /42/);
  assert.equal(subject.pendingInterrupts, []);
  assert.equal(comparable(subject.messages), await storedAsAgui(ctx.stack.db, subject.threadId));

  // Joined again once it has ended: the snapshot is the conversation (user messages under their stored ids).
  const later = agent(ctx, token, { threadId: thread.body.id });
  await within(later.connectAgent(), 15_000, 'the join');
  const rows = await ctx.stack.db.selectFrom('messages').select(['id', 'client_message_id']).where('thread_id', '=', subject.threadId).execute();
  const stored = new Map(rows.map((r) => [r.client_message_id ?? r.id, r.id]));
  assert.equal(comparable(later.messages), comparable(subject.messages).map((m) => (m.role === 'user' ? { ...m, id: stored.get(m.id)! } : m)));
});

test('a bad token fails the run with the server\'s code; nothing is stored', async (ctx) => {
  const subject = agent(ctx, 'not-a-jwt');
  subject.addMessage({ id: 'u1', role: 'user', content: 'hi' });
  const error = await within(subject.runAgent().then(() => undefined, (e: Agui.WebSocketAgentError) => e), 15_000, 'the failure');
  assert.ok(error instanceof ctx.agui.WebSocketAgentError, String(error));
  assert.is(error!.code, 'unauthenticated');
  const threads = await ctx.stack.db.selectFrom('threads').select('id').where('id', '=', subject.threadId).execute();
  assert.is(threads.length, 0);
});

test.run();
