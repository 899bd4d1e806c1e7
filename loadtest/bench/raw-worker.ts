/**
 * The raw turn's worker: the worker's share of a turn done with the bare libraries (BullMQ, pg,
 * fetch, ioredis) and no protocol, as the benchmark's ceiling (loadtest/bench/raw-turn.ts). Per job
 * it reads the thread's messages (unless RAW_READ_HISTORY=0: then the prompt is the job's message
 * alone), makes one streamed request to the model server and parses its SSE, then stores the turn's
 * E events with the assistant message and the run's completion in one statement and publishes the E
 * events in one Redis pipeline. E is the server's events per turn in the same run
 * (RAW_EVENTS_PER_TURN, a mean: turns alternate between the whole numbers around it): the user's
 * `message_created`, `agent_started`, E - 3 `message_delta` (the reply's pieces in order) and
 * `agent_completed` with the reply. No claim, no fence, no retry, no coalescing: the events are
 * written once the reply is complete.
 *
 * Env: RAW_DATABASE_URL, RAW_REDIS_URL, RAW_PREFIX, RAW_MODEL_URL (an OpenAI-compatible base URL),
 * RAW_CONCURRENCY, RAW_READ_HISTORY (1 or 0), RAW_EVENTS_PER_TURN. Sends `{ type: 'ready' }` over IPC.
 */
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { FromRawPart } from './messages.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

interface TurnJob {
  threadId: string;
  runId: string;
  messageId: string;
  content: string;
}

const prefix = env('RAW_PREFIX');
const modelUrl = `${env('RAW_MODEL_URL')}/chat/completions`;
const readHistory = env('RAW_READ_HISTORY') === '1';
const eventsPerTurn = Math.max(4, Number(env('RAW_EVENTS_PER_TURN')));
const pool = new pg.Pool({ connectionString: env('RAW_DATABASE_URL'), max: 10 });
const publisher = new Redis(env('RAW_REDIS_URL'));

/** The request the server makes for its default agent: its system prompt and its two tools. */
const SYSTEM = { role: 'system', content: 'You are a helpful assistant. Use the tools when they help. Answer concisely.' };
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_current_time',
      description: 'Get the current date and time. Without arguments returns UTC in ISO 8601; with an IANA "timezone" returns the local time there.',
      parameters: { type: 'object', properties: { timezone: { type: 'string', minLength: 1, description: 'IANA time zone name, e.g. "Europe/Paris". Omit for UTC.' } }, additionalProperties: false },
    },
  },
  {
    type: 'function',
    function: {
      name: 'calculator',
      description: 'Evaluate an arithmetic expression. Supports + - * / % ^ (power), parentheses, unary minus and decimals. Returns the numeric result.',
      parameters: { type: 'object', properties: { expression: { type: 'string', minLength: 1, maxLength: 200, description: 'Arithmetic expression, e.g. "2*(3+4)".' } }, required: ['expression'], additionalProperties: false },
    },
  },
];

const HISTORY = 'select role, content from raw_messages where thread_id = $1 order by created_at';
const FINISH_TURN = `with t as (update raw_threads set last_seq = last_seq + $4 where id = $1 returning last_seq - $4 as base),
  m as (insert into raw_messages (id, thread_id, run_id, role, content) values ($3, $1, $2, 'assistant', $5)),
  r as (update raw_runs set status = 'completed', assistant_message_id = $3, usage = $6, finished_at = now() where id = $2),
  e as (insert into raw_events (thread_id, seq, run_id, type, payload)
    select $1, t.base + x.n, $2, x.type, x.payload from t, unnest($7::text[], $8::jsonb[]) with ordinality as x(type, payload, n))
  select base from t`;

/** One streamed completion: the reply's text pieces in order, and the usage the server reported. */
async function complete(messages: object[]): Promise<{ pieces: string[]; usage: unknown }> {
  const response = await fetch(modelUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
    body: JSON.stringify({ model: 'sim-1', messages, stream: true, stream_options: { include_usage: true }, tools: TOOLS }),
  });
  if (!response.ok || !response.body) throw new Error(`model: HTTP ${response.status}`);
  const pieces: string[] = [];
  let usage: unknown = null;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const bytes of response.body) {
    buffered += decoder.decode(bytes, { stream: true });
    for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (!block.startsWith('data: ') || block === 'data: [DONE]') continue;
      const chunk = JSON.parse(block.slice(6));
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) pieces.push(piece);
    }
  }
  return { pieces, usage };
}

/** `pieces` in `count` consecutive groups, each joined (a group may be empty when pieces are few). */
function split(pieces: string[], count: number): string[] {
  return Array.from({ length: count }, (_, i) => pieces.slice(Math.floor((i * pieces.length) / count), Math.floor(((i + 1) * pieces.length) / count)).join(''));
}

let turnsStarted = 0;

async function turn(job: Job<TurnJob>): Promise<void> {
  const { threadId, runId, messageId, content } = job.data;
  const k = turnsStarted++;
  const count = Math.max(4, Math.round((k + 1) * eventsPerTurn) - Math.round(k * eventsPerTurn));
  const history = readHistory ? (await pool.query(HISTORY, [threadId])).rows : [{ role: 'user', content }];
  const { pieces, usage } = await complete([SYSTEM, ...history]);
  const text = pieces.join('');
  const replyId = randomUUID();
  const events: Array<[string, object]> = [
    ['message_created', { message: { id: messageId, role: 'user', content } }],
    ['agent_started', { agent_id: 'raw', agent_name: 'Assistant' }],
    ...split(pieces, count - 3).map((delta): [string, object] => ['message_delta', { message_id: replyId, delta }]),
    ['agent_completed', { status: 'completed', message: { id: replyId, role: 'assistant', content: text, run_id: runId }, usage }],
  ];
  const payloads = events.map(([, payload]) => JSON.stringify(payload));
  const { rows } = await pool.query(FINISH_TURN, [threadId, runId, replyId, events.length, text, JSON.stringify(usage), events.map(([type]) => type), payloads]);
  const base = Number(rows[0].base);
  // The frame as a socket receives it: the stored payload with the fields the store assigns.
  const head = `","payload":{"thread_id":"${threadId}","run_id":"${runId}","timestamp":"${new Date().toISOString()}","seq":`;
  const pipeline = publisher.pipeline();
  events.forEach(([type], i) => pipeline.publish(`${prefix}ev:${threadId}`, `{"type":"${type}${head}${base + i + 1},${payloads[i]!.slice(1)}}`));
  await pipeline.exec();
}

const worker = new Worker<TurnJob>('turns', turn, {
  connection: { url: env('RAW_REDIS_URL'), maxRetriesPerRequest: null },
  prefix: `${prefix}bull`,
  concurrency: Number(env('RAW_CONCURRENCY')),
});
worker.on('failed', (job, error) => console.error(`raw worker: job ${job?.id} failed: ${error.message}`));

const tell = (message: FromRawPart) => process.send!(message);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void worker.close().finally(() => {
    publisher.disconnect();
    void pool.end().finally(() => process.exit(0));
  });
});

Promise.all([pool.query('select 1'), worker.waitUntilReady()]).then(
  () => tell({ type: 'ready' }),
  (error: unknown) => {
    tell({ type: 'failed', error: String((error as Error)?.stack ?? error) });
    process.exit(1);
  },
);
