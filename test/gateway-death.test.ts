/**
 * A gateway process killed with SIGKILL mid-stream: the client reconnects to another gateway and
 * resumes with after_seq; nothing missing, nothing doubled. The turn itself is unaffected (the
 * worker is elsewhere).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, type StackCtx } from './support/fixture.js';
import { readyUrl, startNode, type Child } from './support/process.js';
import { TestClient } from './support/client.js';

interface Ctx extends StackCtx {
  gateways: Child[];
}

const test = suite<Ctx>('gateway death');

// The suite's own node is the worker; the gateways are separate processes.
useStack(test, {
  roles: { gateway: false, worker: true },
  setup: (ctx) => {
    ctx.gateways = [];
  },
  teardown: (ctx) => {
    for (const gateway of ctx.gateways) gateway.kill('SIGKILL');
  },
});

async function startGateway(ctx: Ctx): Promise<{ child: Child; url: string }> {
  const child = startNode('gateway', { ...ctx.stack.env, LOG_LEVEL: 'warn' });
  ctx.gateways.push(child);
  return { child, url: await readyUrl(child) };
}

test('SIGKILL the gateway mid-stream: resume on another gateway with after_seq, nothing missing or doubled', async (ctx) => {
  const [a, b] = await Promise.all([startGateway(ctx), startGateway(ctx)]);
  const token = await ctx.stack.token('roamer');
  const first = await TestClient.connect(a.url, { token });
  await first.next((f) => f.type === 'session.ready');
  const ack = await first.request('message.send', { content: 'A long and slow answer please [[words:200]] [[delay:15]]' });
  const { thread_id, run_id } = ack.payload;
  await first.until(() => first.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');
  a.child.kill('SIGKILL');
  await a.child.exited();
  await first.waitClose();
  const seen = first.events(thread_id);
  const lastSeen = seen[seen.length - 1]!.payload.seq as number;

  const second = await TestClient.connect(b.url, { token });
  await second.next((f) => f.type === 'session.ready');
  const sub = await second.request('thread.subscribe', { thread_id, after_seq: lastSeen });
  assert.is(sub.type, 'ack');
  const done = await second.completed(run_id, 30_000);
  const all = [...seen, ...second.events(thread_id)];
  assert.equal(all.map((e) => e.payload.seq), all.map((_, i) => i + 1), 'gap-free, no duplicates');
  assert.is(all.filter((e) => e.type === 'agent_completed').length, 1);
  const text = all.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
  assert.is(text, done.payload.message.content);
  const stored = await ctx.stack.db.selectFrom('events').select('seq').where('thread_id', '=', thread_id).execute();
  assert.is(stored.length, all.length, 'the client holds every stored event');
  second.close();
});

test('SIGTERM the gateway mid-stream: sockets close with 1001, it stops accepting and exits 0; the client resumes elsewhere', async (ctx) => {
  const [a, b] = await Promise.all([startGateway(ctx), startGateway(ctx)]);
  const token = await ctx.stack.token('deployed');
  const first = await TestClient.connect(a.url, { token });
  await first.next((f) => f.type === 'session.ready');
  const ack = await first.request('message.send', { content: 'A long and slow answer please [[words:200]] [[delay:15]]' });
  const { thread_id, run_id } = ack.payload;
  await first.until(() => first.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');
  a.child.kill('SIGTERM');
  assert.is(await first.waitClose(), 1001, 'told the server is going away');
  assert.is(await a.child.exited(15_000), 0, `exits cleanly: ${a.child.stderr().slice(-500)}`);
  const refused = await TestClient.connect(a.url, { token }).then((c) => (c.close(), 'connected'), (error: Error) => error.message);
  assert.match(refused, /ECONNREFUSED/, 'no longer accepting');
  const seen = first.events(thread_id);
  const lastSeen = seen[seen.length - 1]!.payload.seq as number;

  const second = await TestClient.connect(b.url, { token });
  await second.next((f) => f.type === 'session.ready');
  assert.is((await second.request('thread.subscribe', { thread_id, after_seq: lastSeen })).type, 'ack');
  const done = await second.completed(run_id, 30_000);
  assert.is(done.payload.status, 'completed', 'the turn is unaffected');
  const all = [...seen, ...second.events(thread_id)];
  assert.equal(all.map((e) => e.payload.seq), all.map((_, i) => i + 1), 'gap-free, no duplicates');
  assert.is(all.map((e) => e.type === 'message_delta' ? e.payload.delta : '').join(''), done.payload.message.content);
  second.close();
});

test.run();
