/**
 * The SDK's pure parts: how a refusal is read (both forms the server uses lead to the same
 * verdict), the backoff window, and the thread fold's `restarted` reset.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Backoff, applyEvent, emptyThread, judge, prependEvents, type ThreadEvent } from '../protocol/client/index.js';
import { ErrorCodes, isErrorCode, refusalReason } from '../protocol/codes.js';
import type { ErrorPayload } from '../protocol/frames.js';

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

test('a code the SDK does not know is not looked up, even one named like an inherited property (toString)', () => {
  // An error frame without a message: the SDK names a known code's message, else keeps the close reason.
  for (const code of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    const error = { code, retryable: false } as unknown as ErrorPayload;
    for (const close of [1011, 4001, 4503]) {
      const verdict = judge({ kind: 'close', code: close, reason: 'going away', error });
      assert.is(verdict.message, 'going away', `${code} closed with ${close}: ${JSON.stringify(verdict)}`);
    }
  }
  const known = judge({ kind: 'close', code: 4503, reason: 'going away', error: { code: 'unavailable', retryable: true } as unknown as ErrorPayload });
  assert.is(known.message, ErrorCodes.unavailable.message, "a known code's own message");
  assert.ok(isErrorCode('unavailable'));
  for (const name of ['toString', 'constructor', '__proto__', 'valueOf', '', 'nope']) assert.not.ok(isErrorCode(name), name);
  assert.not.ok(isErrorCode(undefined));
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

test('a restarted attempt leaves no tool running for ever: the dead attempt\'s running tools are abandoned, and so is any still running at agent_completed', () => {
  const state = emptyThread('t1');
  const events = [
    ev(1, 'message_created', { message: { id: 'u1', role: 'user', content: 'what time is it?' } }),
    ev(2, 'agent_started', { agent_id: 'a', agent_name: 'Assistant' }),
    ev(3, 'agent_thinking', {}),
    ev(4, 'tool_executing', { tool_call_id: 'c1', name: 'calculator', arguments: { expression: '1+1' } }),
    ev(5, 'tool_completed', { tool_call_id: 'c1', name: 'calculator', result: '2', is_error: false, duration_ms: 3 }),
    ev(6, 'tool_executing', { tool_call_id: 'c2', name: 'get_current_time', arguments: {} }),
    // The worker died here; another attempt takes the run over.
    ev(7, 'agent_thinking', { restarted: true, attempt: 2, message_id: 'm2' }),
    ev(8, 'tool_executing', { tool_call_id: 'c3', name: 'get_current_time', arguments: {} }),
  ];
  for (const event of events) applyEvent(state, event);
  const statusOf = () => Object.fromEntries(state.runs.r1!.tools.map((t) => [t.toolCallId, t.status]));
  assert.equal(statusOf(), { c1: 'completed', c2: 'abandoned', c3: 'running' }, 'the finished tool stays done; the cut-off one is abandoned');
  // The run ends without c3's result (cancelled mid-tool, say): nothing stays running.
  applyEvent(state, ev(9, 'agent_completed', { status: 'cancelled', message: { id: 'm2', role: 'assistant', content: '' } }));
  assert.equal(statusOf(), { c1: 'completed', c2: 'abandoned', c3: 'abandoned' });
  assert.equal(state.activeRunId, undefined);
});

/** A thread of three turns: tools, a restart, a queued second send, a failure, a cancel. */
function longLog(): ThreadEvent[] {
  const log: ThreadEvent[] = [];
  let seq = 0;
  const add = (type: ThreadEvent['type'], payload: Record<string, unknown>, run?: string) => log.push(ev(++seq, type, payload, run as string));
  add('message_created', { message: { id: 'u1', role: 'user', content: 'one', run_id: 'r1' } }, 'r1');
  add('agent_started', { agent_id: 'a', agent_name: 'A' }, 'r1');
  add('agent_thinking', {}, 'r1');
  add('message_delta', { message_id: 'm1', delta: 'lost ' }, 'r1');
  add('agent_thinking', { restarted: true, attempt: 2, message_id: 'm1b' }, 'r1');
  add('tool_executing', { tool_call_id: 'c1', name: 'calculator', arguments: { expression: '2*3' } }, 'r1');
  // A second message arrives while r1 runs (enqueued behind it).
  add('message_created', { message: { id: 'u2', role: 'user', content: 'two', run_id: 'r2' } }, 'r2');
  add('tool_completed', { tool_call_id: 'c1', name: 'calculator', result: '6', is_error: false, duration_ms: 1 }, 'r1');
  for (const word of ['The ', 'answer ', 'is ', '6.']) add('message_delta', { message_id: 'm1b', delta: word }, 'r1');
  add('agent_completed', { status: 'completed', message: { id: 'm1b', role: 'assistant', content: 'The answer is 6.' } }, 'r1');
  add('agent_started', { agent_id: 'a', agent_name: 'A' }, 'r2');
  add('agent_thinking', {}, 'r2');
  for (const word of ['Half ', 'an ']) add('message_delta', { message_id: 'm2', delta: word }, 'r2');
  add('agent_completed', { status: 'failed', message: { id: 'm2', role: 'assistant', content: 'Half an ' }, error: { code: 'llm_error', message: 'boom' } }, 'r2');
  add('message_created', { message: { id: 'u3', role: 'user', content: 'three', run_id: 'r3' } }, 'r3');
  add('agent_started', { agent_id: 'a', agent_name: 'A' }, 'r3');
  add('agent_thinking', {}, 'r3');
  add('tool_executing', { tool_call_id: 'c3', name: 'get_current_time', arguments: {} }, 'r3');
  add('message_delta', { message_id: 'm3', delta: 'Still going' }, 'r3');
  return log;
}

test('a run waiting for an approval or a client tool: status waiting with its pending call until it is answered, then running again', () => {
  const state = emptyThread('t1');
  const request = { tool_call_id: 'call_1', tool_name: 'calculator', arguments: { expression: '6*7' }, expires_at: '2026-01-01T01:00:00.000Z' };
  const events = [
    ev(1, 'message_created', { message: { id: 'u1', role: 'user', content: 'calculate' } }),
    ev(2, 'agent_started', { agent_id: 'a', agent_name: 'Guarded' }),
    ev(3, 'agent_thinking', {}),
    ev(4, 'approval_requested', request),
  ];
  for (const event of events) applyEvent(state, event);
  const run = state.runs.r1!;
  assert.equal([run.status, run.thinking, state.activeRunId], ['waiting', false, 'r1']);
  assert.equal(run.pending, { kind: 'approval', toolCallId: 'call_1', toolName: 'calculator', arguments: { expression: '6*7' }, expiresAt: request.expires_at });
  // Denied: the decision ends the wait; the refusal's result arrives without a tool_executing.
  applyEvent(state, ev(5, 'approval_resolved', { tool_call_id: 'call_1', tool_name: 'calculator', status: 'denied', reason: 'no' }));
  assert.equal([run.status, run.pending, run.thinking], ['running', undefined, true]);
  applyEvent(state, ev(6, 'tool_completed', { tool_call_id: 'call_1', name: 'calculator', result: 'denied', is_error: true, duration_ms: 0 }));
  assert.equal(run.tools.map((t) => [t.toolCallId, t.status, t.result]), [['call_1', 'error', 'denied']]);
  // Then a client tool: its result (tool_completed) ends the wait.
  applyEvent(state, ev(7, 'client_tool_requested', { ...request, tool_call_id: 'call_2', tool_name: 'pick_color', arguments: {} }));
  assert.equal([run.status, run.pending?.kind, run.pending?.toolCallId], ['waiting', 'client', 'call_2']);
  applyEvent(state, ev(8, 'tool_completed', { tool_call_id: 'call_2', name: 'pick_color', result: 'navy', is_error: false, duration_ms: 1200 }));
  assert.equal([run.status, run.pending], ['running', undefined]);
  // Cancelled while waiting: the run ends and nothing is pending any more.
  applyEvent(state, ev(9, 'approval_requested', { ...request, tool_call_id: 'call_3' }));
  applyEvent(state, ev(10, 'approval_resolved', { tool_call_id: 'call_3', tool_name: 'calculator', status: 'cancelled' }));
  assert.is(run.thinking, false, 'a cancelled request does not look like the model working');
  applyEvent(state, ev(11, 'agent_completed', { status: 'cancelled', message: { id: 'm1', role: 'assistant', content: '' } }));
  assert.equal([run.status, run.pending, state.activeRunId], ['cancelled', undefined, undefined]);
});

test('history pages fold to the same state as the live log, wherever the page boundaries fall', () => {
  const log = longLog();
  const live = emptyThread('t1');
  for (const event of log) applyEvent(live, event);
  assert.equal(live.activeRunId, 'r3');
  assert.equal(live.messages.map((m) => m.id), ['u1', 'u2', 'm1b', 'm2', 'u3', 'm3']);
  for (let size = 1; size <= log.length; size++) {
    const paged = emptyThread('t1');
    // The newest page first, then older ones, as thread.history serves them.
    for (let end = log.length; end > 0; end -= size) prependEvents(paged, log.slice(Math.max(0, end - size), end), end - size > 0);
    const what = `pages of ${size}`;
    assert.equal(paged.messages, live.messages, `${what}: messages`);
    assert.equal(paged.runs, live.runs, `${what}: runs`);
    assert.equal(paged.activeRunId, live.activeRunId, `${what}: active run`);
    assert.equal(paged.events.map((e) => e.payload.seq), log.map((e) => e.payload.seq), `${what}: events`);
    assert.equal([paged.firstSeq, paged.lastSeq, paged.hasOlder], [1, log.length, false], what);
  }
  // Live events after a history page, then older pages: the same again.
  for (let split = 1; split < log.length; split++) {
    const mixed = emptyThread('t1');
    prependEvents(mixed, log.slice(split - 1, split), true);
    for (const event of log.slice(split)) applyEvent(mixed, event);
    prependEvents(mixed, log.slice(0, split - 1), false);
    assert.equal([mixed.messages, mixed.runs, mixed.activeRunId], [live.messages, live.runs, live.activeRunId], `split at ${split}`);
  }
});

test.run();
