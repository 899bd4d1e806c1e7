import net from 'node:net';
import pino from 'pino';
import { sql } from 'kysely';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore } from '../db/connect.js';
import { appendBatch, type AppendItem } from '../db/events.repository.js';
import { voidEventWrite } from '../db/event-writes.repository.js';
import { newWriteId } from '../db/ids.js';
import { claimRun } from '../db/runs.repository.js';
import { recordTurn } from '../db/turns.repository.js';
import { GroupCommitEventLog } from '../events/group-commit-log.js';
import { RunEmitter } from '../workers/run-emitter.js';
import { registry } from '../metrics/registry.js';
import { redisOnlyTest, useStack, type StackCtx } from './support/fixture.js';
import type { Backend } from './support/stack.js';
import { waitFor, within } from './support/wait.js';

/**
 * Event-write ids (migration 0007), against every backend (event-writes.redis.test.ts,
 * event-writes.embedded.test.ts): settling a write whose answer was lost, a late copy of a lost
 * write arriving after the retry (through a proxy that holds its packets), and the worker's prune
 * task deleting old ids on its timer.
 */
export function eventWritesSuite(backend: Backend): void {
  const test = suite<StackCtx>(`event-write ids (${backend})`);
  // The worker's prune task every 200 ms; its stale sweep must not touch the runs driven by hand.
  useStack(test, { backend, env: { PRUNE_INTERVAL_MS: '200', RUN_STALE_MS: '600000' } });
  const postgresOnly = redisOnlyTest(test, backend);
  const silent = pino({ level: 'silent' });

  async function startRun(ctx: StackCtx, user: string) {
    const turn = await recordTurn(ctx.node.db, { workspaceId: 'acme', userId: user }, { content: `Hello from ${user}` });
    const claim = await claimRun(ctx.node.db, turn.runId);
    if (claim.kind !== 'claimed') throw new Error(`run ${turn.runId} not claimed`);
    return { threadId: turn.threadId, runId: turn.runId, messageId: claim.run.assistant_message_id!, fence: claim.fence, afterSeq: claim.thread.last_seq };
  }

  function delta(run: Awaited<ReturnType<typeof startRun>>, text: string): AppendItem {
    return { threadId: run.threadId, fence: run.fence, draft: { type: 'message_delta', run_id: run.runId, payload: { message_id: run.messageId, delta: text } } };
  }

  const deltas = async (ctx: StackCtx, threadId: string) =>
    (await ctx.node.db.selectFrom('events').select(['seq', 'payload']).where('thread_id', '=', threadId).where('type', '=', 'message_delta').orderBy('seq').execute())
      .map((e) => [e.seq, e.payload.delta]);

  test('a committed write settles as committed; an unknown one is voided, and a late copy of it stores nothing', async (ctx) => {
    const run = await startRun(ctx, 'settle');
    const committed = newWriteId();
    await appendBatch(ctx.node.db, [delta(run, 'stored')], { writeId: committed, wait: false });
    assert.is(await voidEventWrite(ctx.node.db, committed), false, 'the committed write is found');
    assert.is(await voidEventWrite(ctx.node.db, committed), false, 'and stays found');

    const lost = newWriteId();
    assert.is(await voidEventWrite(ctx.node.db, lost), true, 'a write that never arrived is voided');
    assert.is(await voidEventWrite(ctx.node.db, lost), true, 'a second writer of the same lost batch sees it voided too');
    const late = await appendBatch(ctx.node.db, [delta(run, 'late copy')], { writeId: lost }).then(() => 'stored', (error: { code?: string }) => error.code);
    assert.is(late, '23505', 'the late copy fails on its voided id');
    assert.equal(await deltas(ctx, run.threadId), [[2, 'stored']], 'nothing of the late copy was stored; no seq was used');
  });

  test('the worker\'s prune task deletes write ids older than an hour and keeps newer ones', async (ctx) => {
    const old = newWriteId(Date.now() - 2 * 3_600_000);
    const recent = newWriteId(Date.now() - 60_000);
    await ctx.node.db.insertInto('event_writes').values([{ id: old }, { id: recent }]).execute();
    const ids = async () => (await ctx.node.db.selectFrom('event_writes').select('id').where('id', 'in', [old, recent]).execute()).map((r) => r.id);
    await waitFor(async () => !(await ids()).includes(old), 10_000, 'the old id to be pruned');
    assert.equal(await ids(), [recent]);
    const prunes = (await registry.getSingleMetric('convo_background_tasks_total')!.get()).values.filter((v) => v.labels.task === 'prune');
    assert.ok(prunes.some((v) => v.labels.result === 'ok' && v.value > 0), 'the prune task ran and succeeded');
  });

  postgresOnly('a lost write held up in the network lands after the retry: refused by its voided id, every event stored once', async (ctx) => {
    const url = new URL(ctx.stack.database!.url);
    const proxy = await packetHolder(Number(url.port || 5432));
    url.port = String(proxy.port);
    const store = await openStore({ kind: 'postgres', url: url.toString(), poolSize: 1 });
    const log = new GroupCommitEventLog(store.db, ctx.node.broker, silent);
    try {
      const run = await startRun(ctx, 'late-copy');
      await store.db.selectFrom('threads').select('id').limit(1).execute(); // the pool's connection, before the hold is armed
      const emitter = new RunEmitter(store.db, run.threadId, run.fence, silent, { afterSeq: run.afterSeq, events: log, retryWindowMs: 20_000 });
      proxy.holdNextWrite();
      await within(emitter.emitAll([
        { type: 'message_delta', payload: { message_id: run.messageId, delta: 'once' } },
        { type: 'message_delta', payload: { message_id: run.messageId, delta: ' only' } },
      ]), 20_000, 'the emitter, retrying on a new connection');
      assert.is(proxy.held, 1, 'the first write was held up and its connection cut');
      assert.equal(await deltas(ctx, run.threadId), [[2, 'once'], [3, ' only']], 'the retry stored the events');

      const answer = await within(proxy.release(), 10_000, 'the late copy reaching Postgres');
      assert.match(answer, /event_writes_pkey|duplicate key/, 'Postgres refused the late copy by its write id');
      assert.equal(await deltas(ctx, run.threadId), [[2, 'once'], [3, ' only']], 'the late copy stored nothing');
      const thread = await ctx.node.db.selectFrom('threads').select('last_seq').where('id', '=', run.threadId).executeTakeFirstOrThrow();
      assert.is(thread.last_seq, 3, 'and used no seq');
      const voided = await sql<{ n: number }>`select count(*)::int as n from event_writes where void`.execute(ctx.node.db);
      assert.ok(voided.rows[0]!.n >= 1, 'the lost write\'s id was voided');
    } finally {
      await log.close();
      await store.close();
      await proxy.close();
    }
  });

  test.run();
}

/**
 * A TCP proxy to Postgres that, once armed, holds the client's next write (the bytes of a query)
 * instead of passing it on and cuts the client's side of that connection (the client sees the
 * connection drop and retries elsewhere), keeping the server's side open. `release()` delivers the
 * held bytes late, as a network that held them would, and resolves with what the server answered.
 */
async function packetHolder(targetPort: number) {
  let armed = false;
  let held: { upstream: net.Socket; bytes: Buffer[] } | undefined;
  let holds = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => {});
    client.on('close', () => {
      if (held?.upstream !== upstream) upstream.destroy();
    });
    client.on('data', (chunk) => {
      if (armed) {
        armed = false;
        holds++;
        held = { upstream, bytes: [chunk] };
        client.resetAndDestroy();
        return;
      }
      if (held?.upstream === upstream) held.bytes.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (held?.upstream !== upstream) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get held() {
      return holds;
    },
    holdNextWrite() {
      armed = true;
    },
    release(): Promise<string> {
      const late = held;
      if (!late) return Promise.reject(new Error('nothing is held'));
      return new Promise((resolve) => {
        let answer = '';
        late.upstream.on('data', (chunk) => {
          answer += chunk.toString('latin1');
          // ReadyForQuery ('Z') ends the server's answer to the held query.
          if (answer.includes('Z\u0000\u0000\u0000\u0005')) {
            late.upstream.destroy();
            resolve(answer);
          }
        });
        for (const bytes of late.bytes) late.upstream.write(bytes);
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
