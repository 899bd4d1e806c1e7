/**
 * The raw ceiling: what the parts alone cost for the work a turn does, on the same Postgres and
 * Redis as the measured run. Per turn: one BullMQ no-op job (added, claimed, completed), and as
 * many event rows and Redis publishes as the run emitted per turn, the rows in one INSERT, the
 * publishes received by one pattern subscriber (standing in for a gateway). Closed loop, with as
 * many turns in flight as the run had clients. No protocol, no validation, no fencing: a floor
 * for the server's cost, not a server.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { CeilingConfig, CeilingResult, ToCeiling } from './messages.js';
import { waitFor } from '../../test/support/wait.js';

let waiting: (() => void) | undefined;
const mark = (name: 'start' | 'end') => new Promise<void>((resolve) => {
  waiting = resolve;
  process.send!({ type: 'mark', name });
});

async function run(config: CeilingConfig): Promise<CeilingResult> {
  const connection = { url: config.redisUrl, maxRetriesPerRequest: null };
  const prefix = `${config.prefix}ceiling`;
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 });
  const pub = new Redis(config.redisUrl);
  const sub = new Redis(config.redisUrl);
  const queue = new Queue('noop', { connection, prefix });
  let received = 0;
  let rows = 0;
  let publishes = 0;
  const seqs = new Map<number, number>();
  const done = new Map<string, () => void>();
  const rowsPerTurn = Math.max(1, Math.round(config.eventsPerTurn));
  const body = 'x'.repeat(Math.max(0, config.eventBytes - 120));
  try {
    await pool.query(`create table if not exists ceiling_events (
      thread_id text not null, seq integer not null, run_id text, type text not null, payload jsonb not null,
      created_at timestamptz not null default now(), primary key (thread_id, seq))`);
    await sub.psubscribe(`${config.prefix}ceil:*`);
    sub.on('pmessage', () => received++);
    const worker = new Worker<{ client: number; k: number }>('noop', async (job) => {
      const thread = `ct_${job.data.client}`;
      const first = (seqs.get(job.data.client) ?? 0) + 1;
      seqs.set(job.data.client, first + rowsPerTurn - 1);
      const values: string[] = [];
      const params: unknown[] = [];
      const frames: string[] = [];
      for (let i = 0; i < rowsPerTurn; i++) {
        const frame = JSON.stringify({ type: 'message_delta', payload: { thread_id: thread, run_id: job.id, seq: first + i, delta: body } });
        frames.push(frame);
        params.push(thread, first + i, job.id, 'message_delta', frame);
        const b = i * 5;
        values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}::jsonb)`);
      }
      await pool.query(`insert into ceiling_events (thread_id, seq, run_id, type, payload) values ${values.join(', ')}`, params);
      rows += rowsPerTurn;
      await Promise.all(frames.map((frame, i) => pub.publish(`${config.prefix}ceil:${thread}`, `${first + i}\n${frame}`)));
      publishes += rowsPerTurn;
    }, { connection, prefix, concurrency: config.concurrency });
    worker.on('completed', (job) => done.get(job.id!)?.());
    await worker.waitUntilReady();
    try {
      await mark('start');
      const started = performance.now();
      const stopAt = Date.now() + config.deadlineS * 1000;
      let next = 0;
      let turns = 0;
      await Promise.all(Array.from({ length: config.concurrency }, async (_, client) => {
        for (let k = 0; next < config.turns && Date.now() < stopAt; k++) {
          next++;
          const id = `${client}-${k}`;
          const finished = new Promise<void>((resolve) => done.set(id, resolve));
          await queue.add('noop', { client, k }, { jobId: id, removeOnComplete: true, removeOnFail: true });
          await finished;
          done.delete(id);
          turns++;
        }
      }));
      const windowS = (performance.now() - started) / 1000;
      await mark('end');
      // The last publishes reach the subscriber a moment later; what did not within 2 s is reported as missing.
      await waitFor(() => received >= publishes, 2_000, 'the last publishes', 20).catch(() => {});
      return { turns, windowS, rows, publishes, received };
    } finally {
      await worker.close();
    }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await pool.query('drop table if exists ceiling_events').catch(() => {});
    await pool.end();
    pub.disconnect();
    sub.disconnect();
  }
}

process.on('message', (message: ToCeiling) => {
  if (message.type === 'go') {
    const resolve = waiting;
    waiting = undefined;
    resolve?.();
    return;
  }
  run(message.config).then(
    (result) => process.send!({ type: 'result', result }),
    (error: unknown) => process.send!({ type: 'failed', error: String((error as Error)?.stack ?? error) }),
  ).finally(() => process.disconnect());
});
