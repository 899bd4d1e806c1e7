/**
 * The embedded mode after a crash: a process killed with SIGKILL mid-turn, started again on the
 * same DATA_DIR, ends the cut-off run with its one agent_completed (failed, worker_lost), keeping
 * the text that had been streamed, and serves new turns on the same thread.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readyUrl, startNode, type Child } from './support/process.js';
import { TestClient } from './support/client.js';
import { signToken } from '../server/auth.js';
import { createStack } from './support/stack.js';

interface Ctx {
  dataDir: string;
  children: Child[];
  secret: string;
}

const test = suite<Ctx>('embedded crash recovery');

test.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-crash-'));
  ctx.children = [];
  ctx.secret = randomBytes(32).toString('hex');
});
test.after(async (ctx) => {
  for (const child of ctx.children) child.kill('SIGKILL');
  await rm(ctx.dataDir, { recursive: true, force: true });
});

async function start(ctx: Ctx) {
  const child = startNode(undefined, { DATA_DIR: ctx.dataDir, PORT: '0', HOST: '127.0.0.1', JWT_SECRET: ctx.secret, LOG_LEVEL: 'warn' });
  ctx.children.push(child);
  return { child, url: await readyUrl(child, 60_000) };
}

test('SIGKILL mid-turn: the next start ends the run failed (worker_lost) with the streamed text, once', async (ctx) => {
  const token = await signToken(ctx.secret, { sub: 'crash', workspace: 'acme', ttlSeconds: 600 });
  const first = await start(ctx);
  const client = await TestClient.connect(first.url, { token });
  await client.next((f) => f.type === 'session.ready');
  const ack = await client.request('message.send', { content: 'A long answer please [[words:400]] [[delay:25]]' });
  const { thread_id, run_id } = ack.payload;
  await client.until(() => client.events(thread_id).filter((e) => e.type === 'message_delta').length >= 3, 20_000, 'some deltas');
  first.child.kill('SIGKILL');
  await first.child.exited();
  await client.waitClose();
  const before = client.events(thread_id);
  const streamed = before.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');

  const second = await start(ctx);
  const again = await TestClient.connect(second.url, { token });
  await again.next((f) => f.type === 'session.ready');
  const sub = await again.request('thread.subscribe', { thread_id, after_seq: 0 });
  assert.is(sub.type, 'ack');
  const done = await again.completed(run_id, 20_000);
  const events = again.events(thread_id);
  assert.equal(events.map((e) => e.payload.seq), events.map((_, i) => i + 1), 'gap-free');
  assert.equal(events.filter((e) => e.type === 'agent_completed' && e.payload.run_id === run_id).length, 1, 'exactly one agent_completed');
  assert.is(done.payload.status, 'failed');
  assert.is(done.payload.error.code, 'worker_lost');
  const joined = events.filter((e) => e.type === 'message_delta' && e.payload.run_id === run_id).map((e) => e.payload.delta).join('');
  assert.is(done.payload.message.content, joined, 'the final message is the text streamed before the crash');
  assert.ok(joined.startsWith(streamed), 'everything the first client saw is still there');

  // The thread is not stuck: a new turn runs to completion.
  const next = await again.request('message.send', { content: 'Still there?', thread_id });
  const completed = await again.completed(next.payload.run_id, 20_000);
  assert.is(completed.payload.status, 'completed');
  again.close();
  second.child.kill('SIGTERM');
  await second.child.exited();
});

test('a graceful stop past SHUTDOWN_GRACE_MS ends the active turn failed (worker_lost), not cancelled', async () => {
  const stack = await createStack({ backend: 'embedded', env: { SHUTDOWN_GRACE_MS: '200' } });
  try {
    const first = await stack.start();
    const token = await stack.token('stopper');
    const client = await TestClient.connect(stack.wsUrl(first), { token });
    await client.next((f) => f.type === 'session.ready');
    const ack = await client.request('message.send', { content: 'A slow and long answer please [[words:400]] [[delay:25]]' });
    const { thread_id, run_id } = ack.payload;
    await client.until(() => client.events(thread_id).some((e) => e.type === 'message_delta'), 20_000, 'a delta');
    await first.close();
    assert.is(await client.waitClose(), 1001, 'sockets are told the server is going away');

    const second = await stack.start();
    const again = await TestClient.connect(stack.wsUrl(second), { token });
    await again.next((f) => f.type === 'session.ready');
    await again.request('thread.subscribe', { thread_id, after_seq: 0 });
    const done = await again.completed(run_id, 10_000);
    assert.is(done.payload.status, 'failed');
    assert.is(done.payload.error.code, 'worker_lost');
    const events = again.events(thread_id);
    assert.is(events.filter((e) => e.type === 'agent_completed').length, 1);
    const joined = events.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
    assert.is(done.payload.message.content, joined);
    again.close();
  } finally {
    await stack.close();
  }
});

test.run();
