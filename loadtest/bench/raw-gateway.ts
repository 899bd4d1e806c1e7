/**
 * The raw turn's gateway: the gateway's share of a turn done with the bare libraries (uWebSockets.js,
 * pg, BullMQ, ioredis) and no protocol, as the benchmark's ceiling (loadtest/bench/raw-turn.ts). Per
 * `message.send` it parses the frame, stores the user message (its search vector is a generated
 * column, as in the server's messages table) and a queued run in one statement, adds one BullMQ job
 * and acks; every event the worker publishes on Redis it relays to the sockets of the thread (one
 * pattern subscription, uWS topics). It answers just enough of the driver's frames to be driven
 * like the server (`session.ready` on open, `thread.create`, `thread.subscribe`) and checks nothing:
 * no token, no schema, no owner, no limits.
 *
 * Env: RAW_DATABASE_URL, RAW_REDIS_URL, RAW_PREFIX (its Redis keys and channels). It listens on a
 * free loopback port and sends `{ type: 'ready', port }` over IPC.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type * as Uws from 'uWebSockets.js';
import type { FromRawPart } from './messages.js';

interface Frame {
  type?: string;
  id?: string;
  payload?: { thread_id?: string; content?: string };
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const uWS = createRequire(import.meta.url)('uWebSockets.js') as typeof Uws;
const prefix = env('RAW_PREFIX');
const channels = `${prefix}ev:`;
const pool = new pg.Pool({ connectionString: env('RAW_DATABASE_URL'), max: 10 });
const queue = new Queue('turns', { connection: { url: env('RAW_REDIS_URL'), maxRetriesPerRequest: null }, prefix: `${prefix}bull` });
const subscriber = new Redis(env('RAW_REDIS_URL'));

const RECORD_TURN = `with m as (insert into raw_messages (id, thread_id, role, content) values ($1, $2, 'user', $3))
  insert into raw_runs (id, thread_id, status, user_message_id) values ($4, $2, 'queued', $1)`;

type Socket = Uws.WebSocket<{ open?: boolean }>;

/** Sends once the answer is ready (after an await the socket may have closed). */
function reply(ws: Socket, type: string, id: string | undefined, payload: object): void {
  if (ws.getUserData().open) ws.cork(() => ws.send(JSON.stringify({ type, id, payload })));
}

async function handle(ws: Socket, frame: Frame): Promise<void> {
  const threadId = frame.payload?.thread_id;
  switch (frame.type) {
    case 'thread.create': {
      const id = randomUUID();
      ws.subscribe(id);
      await pool.query('insert into raw_threads (id) values ($1)', [id]);
      return reply(ws, 'ack', frame.id, { thread: { id } });
    }
    case 'thread.subscribe':
      if (!threadId) throw new Error('thread_id is missing');
      ws.subscribe(threadId);
      return reply(ws, 'ack', frame.id, { thread_id: threadId });
    case 'message.send': {
      if (!threadId || typeof frame.payload?.content !== 'string') throw new Error('thread_id or content is missing');
      const content = frame.payload.content;
      const messageId = randomUUID();
      const runId = randomUUID();
      // Before the job exists, so no event of the run can pass the socket by.
      ws.subscribe(threadId);
      await pool.query(RECORD_TURN, [messageId, threadId, content, runId]);
      await queue.add('turn', { threadId, runId, messageId, content }, { jobId: runId, removeOnComplete: true, removeOnFail: true });
      return reply(ws, 'ack', frame.id, { thread_id: threadId, message_id: messageId, run_id: runId });
    }
    default:
      throw new Error(`unknown frame type ${frame.type}`);
  }
}

const app = uWS.App();
app.ws<{ open?: boolean }>('/*', {
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  // Nothing is dropped for a slow reader: the driver checks that every event arrived.
  maxBackpressure: 64 * 1024 * 1024,
  open(ws) {
    ws.getUserData().open = true;
    ws.send('{"type":"session.ready","payload":{}}');
  },
  message(ws, data) {
    let frame: Frame;
    try {
      frame = JSON.parse(Buffer.from(data).toString());
    } catch {
      return reply(ws, 'error', undefined, { code: 'bad_frame', message: 'not JSON' });
    }
    handle(ws, frame).catch((error: unknown) => reply(ws, 'error', frame.id, { code: 'internal', message: String((error as Error)?.message ?? error) }));
  },
  close(ws) {
    ws.getUserData().open = false;
  },
});

subscriber.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
  app.publish(channel.toString('latin1', channels.length), message, false);
});

const tell = (message: FromRawPart) => process.send!(message);

async function start(): Promise<void> {
  await pool.query('select 1');
  await queue.waitUntilReady();
  await subscriber.psubscribe(`${channels}*`);
  const token = await new Promise<Uws.us_listen_socket>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => (socket ? resolve(socket) : reject(new Error('cannot listen on 127.0.0.1'))));
  });
  tell({ type: 'ready', port: uWS.us_socket_local_port(token as unknown as Uws.us_socket) });
}

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  subscriber.disconnect();
  void Promise.allSettled([queue.close(), pool.end()]).finally(() => process.exit(0));
});

start().catch((error: unknown) => {
  tell({ type: 'failed', error: String((error as Error)?.stack ?? error) });
  process.exit(1);
});
