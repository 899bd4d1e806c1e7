/**
 * What a fault must never break, checked from a client's point of view against the log: every
 * event of the thread exactly once and in order, equal to what Postgres stored, one agent_completed
 * per run, and a streamed text a client can rebuild (the protocol's reset rule on a takeover).
 */
import * as assert from 'uvu/assert';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { Frame, TestClient } from './client.js';
import { waitFor } from './wait.js';

/**
 * The client's events of the thread are seq 1..N with no gap and no duplicate, and equal what the
 * `events` table holds (seq, type and payload, field for field). Returns them.
 */
export async function assertClientMatchesLog(db: Kysely<Database>, client: TestClient, threadId: string, fromSeq = 1): Promise<Frame[]> {
  const received = client.events(threadId);
  assert.equal(
    received.map((e) => e.payload.seq),
    received.map((_, i) => i + fromSeq),
    `thread ${threadId}: the client got seq ${fromSeq}..N once each, in order`,
  );
  const stored = await db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('thread_id', '=', threadId)
    .where('seq', '>=', fromSeq)
    .orderBy('seq')
    .execute();
  assert.equal(
    received.map((e) => ({ seq: e.payload.seq, type: e.type, payload: e.payload })),
    stored.map((e) => ({ seq: e.seq, type: e.type, payload: e.payload })),
    `thread ${threadId}: what the client got equals the log`,
  );
  return received;
}

/**
 * The run has exactly one agent_completed among `events`, and the text rebuilds exactly: the
 * message_deltas after the run's last `agent_thinking {restarted}` (all of them if it was never
 * taken over) carry the final message id and join to `agent_completed.message.content`. Returns
 * the agent_completed frame and the takeover announcements seen.
 */
export function assertRunRebuilds(events: Frame[], runId: string): { completed: Frame; restarts: Frame[] } {
  const ofRun = events.filter((e) => e.payload.run_id === runId);
  const completions = ofRun.filter((e) => e.type === 'agent_completed');
  assert.is(completions.length, 1, `run ${runId}: exactly one agent_completed`);
  const completed = completions[0]!;
  assert.is(ofRun[ofRun.length - 1], completed, `run ${runId}: agent_completed is the run's last event`);
  const restarts = ofRun.filter((e) => e.type === 'agent_thinking' && e.payload.restarted);
  const from = restarts.length > 0 ? ofRun.indexOf(restarts[restarts.length - 1]!) : 0;
  const deltas = ofRun.slice(from).filter((e) => e.type === 'message_delta');
  assert.is(deltas.map((e) => e.payload.delta).join(''), completed.payload.message.content, `run ${runId}: the deltas rebuild the final text`);
  const strays = deltas.filter((e) => e.payload.message_id !== completed.payload.message.id);
  assert.is(strays.length, 0, `run ${runId}: every delta after the last reset carries the final message id`);
  if (restarts.length > 0) assert.is(restarts[restarts.length - 1]!.payload.message_id, completed.payload.message.id);
  return { completed, restarts };
}

/** GET /ready: its status and body (not an error body, so not through rest()). */
export async function ready(base: string, timeoutMs = 15_000): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.json() };
}

/** Polls /ready until it answers `status`, or throws after `timeoutMs` with the last answer. */
export async function readyBecomes(base: string, status: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  const answers = async () => {
    try {
      const answer = await ready(base, Math.max(1_000, deadline - Date.now()));
      last = answer;
      return answer.status === status;
    } catch (error) {
      last = (error as Error).message;
      return false;
    }
  };
  await waitFor(answers, timeoutMs, () => `/ready to answer ${status}; last: ${JSON.stringify(last)}`, 100);
}
