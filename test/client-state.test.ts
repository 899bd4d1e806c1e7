/**
 * The SDK's pure parts: how a refusal is read (both forms the server uses lead to the same
 * verdict), the backoff window, and the thread fold's `restarted` reset.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Backoff, applyEvent, emptyThread, judge, prependEvents, type ThreadEvent } from '../protocol/client/index.js';
import { refusalReason } from '../protocol/codes.js';

const test = suite('client SDK: refusals, backoff, thread state');

test('a refusal reads the same as an HTTP answer and as an error frame plus close code', () => {
  const cases: Array<{ code: 'unauthenticated' | 'token_expired' | 'forbidden' | 'rate_limited' | 'unavailable'; status: number; close: number; retry?: number; action: string }> = [
    { code: 'unauthenticated', status: 401, close: 4001, action: 'stop' },
    { code: 'token_expired', status: 401, close: 4001, action: 'refresh' },
    { code: 'forbidden', status: 403, close: 4003, action: 'stop' },
    { code: 'rate_limited', status: 429, close: 4008, retry: 1500, action: 'reconnect' },
    { code: 'unavailable', status: 503, close: 4503, retry: 2000, action: 'reconnect' },
  ];
  for (const c of cases) {
    const message = `refused: ${c.code}`;
    const body = { code: c.code, message, retryable: false, ...(c.retry ? { retry_after_ms: c.retry } : {}) };
    const http = judge({ kind: 'http', status: c.status, body });
    const closed = judge({ kind: 'close', code: c.close, reason: refusalReason(c.code, c.retry), error: body });
    // A browser that missed the error frame still has the close reason.
    const reasonOnly = judge({ kind: 'close', code: c.close, reason: refusalReason(c.code, c.retry) });
    for (const verdict of [http, closed, reasonOnly]) {
      assert.equal(verdict.action, c.action, `${c.code}: ${JSON.stringify(verdict)}`);
      assert.equal(verdict.code, c.code);
      if (c.retry) assert.equal((verdict as { atLeastMs?: number }).atLeastMs, c.retry);
    }
    assert.equal(http.message, message);
    assert.equal(closed.message, message);
  }
  // The socket closed at the token's exp (reason 'token expired'): a fresh token cures it.
  assert.equal(judge({ kind: 'close', code: 4001, reason: 'token expired' }).action, 'refresh');
  for (const code of [1001, 1006, 1011, 1013, 1009]) assert.equal(judge({ kind: 'close', code, reason: '' }).action, 'reconnect', String(code));
  assert.equal(judge({ kind: 'http', status: 404, body: { code: 'not_found', message: 'No such route.' } }).action, 'stop', 'a wrong URL is not retried');
});

test('backoff: full jitter within a window that doubles up to the cap, never below a retry hint', () => {
  const top = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.equal([0, 1, 2, 3, 4, 5].map(() => top.next()), [99, 199, 399, 799, 999, 999]);
  const bottom = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
  assert.equal(bottom.next(), 0, 'full jitter may retry at once');
  assert.equal(bottom.next(2500), 2500, 'a retry_after_ms hint is a floor');
  bottom.reset();
  assert.equal(bottom.attempts, 0);
});

const base = { thread_id: 't1', timestamp: '2026-01-01T00:00:00.000Z' };
const ev = (seq: number, type: ThreadEvent['type'], payload: Record<string, unknown>, run_id = 'r1') =>
  ({ type, payload: { ...base, seq, run_id, ...payload } }) as unknown as ThreadEvent;

test('agent_thinking {restarted} drops the text streamed by the attempt that died and rebuilds from the new message id', () => {
  const events = [
    ev(1, 'message_created', { message: { id: 'u1', role: 'user', content: 'hi' } }),
    ev(2, 'agent_started', { agent_id: 'a', agent_name: 'Assistant' }),
    ev(3, 'agent_thinking', {}),
    ev(4, 'message_delta', { message_id: 'm-old', delta: 'Half a sen' }),
    ev(5, 'agent_thinking', { restarted: true, attempt: 2, message_id: 'm-new' }),
    ev(6, 'message_delta', { message_id: 'm-new', delta: 'A whole ' }),
    ev(7, 'message_delta', { message_id: 'm-new', delta: 'sentence.' }),
  ];
  const state = emptyThread('t1');
  for (const event of events) assert.ok(applyEvent(state, event));
  assert.not.ok(applyEvent(state, events[5]!), 'a duplicate is refused');
  assert.equal(state.messages.map((m) => [m.id, m.content, m.streaming]), [['u1', 'hi', false], ['m-new', 'A whole sentence.', true]]);
  assert.equal(state.runs.r1!.attempt, 2);
  assert.equal(state.activeRunId, 'r1');
  applyEvent(state, ev(8, 'agent_completed', { status: 'completed', message: { id: 'm-new', role: 'assistant', content: 'A whole sentence.' } }));
  assert.equal(state.messages[1]!.streaming, false);
  assert.equal(state.activeRunId, undefined);

  // The same log read as history pages, newest first, folds to the same state.
  const paged = emptyThread('t1');
  prependEvents(paged, [...events, ev(8, 'agent_completed', { status: 'completed', message: { id: 'm-new', role: 'assistant', content: 'A whole sentence.' } })].slice(4), true);
  prependEvents(paged, events.slice(0, 4), false);
  assert.equal(paged.messages, state.messages);
  assert.equal(paged.firstSeq, 1);
  assert.equal(paged.lastSeq, 8);
});

test.run();
