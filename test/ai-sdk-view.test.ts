/**
 * The AI SDK mapping (server/views/ai-sdk.ts) on event sequences the stack makes rarely or slowly:
 * a takeover that restarts the answer, an approval that expires, a run cancelled while it waits.
 * Each translation is read by the `ai` package's own readUIMessageStream, which must accept every
 * chunk, and the same events always give the same chunks.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { UIMessage } from 'ai';
import type { EventPayloads, EventType, ThreadEvent } from '../protocol/frames.js';
import { AiSdkRunView, finishChunk, startChunk } from '../server/views/ai-sdk.js';
import { rebuild } from './support/ai-sdk-chat.js';

const test = suite('AI SDK view');
const RUN = 'run_view';

function run(...drafts: Array<[EventType, object]>): ThreadEvent[] {
  return drafts.map(([type, payload], i) => ({
    type,
    payload: { thread_id: 't_view', run_id: RUN, seq: i + 1, timestamp: new Date(0).toISOString(), ...payload } as EventPayloads[EventType],
  }) as ThreadEvent);
}

async function translate(events: ThreadEvent[]) {
  const view = new AiSdkRunView(RUN);
  const chunks = [startChunk(RUN), ...events.flatMap((e) => view.push(e))];
  chunks.push(finishChunk(view.finishReason ?? 'tool-calls'));
  const again = new AiSdkRunView(RUN);
  assert.equal([startChunk(RUN), ...events.flatMap((e) => again.push(e)), chunks.at(-1)], chunks, 'deterministic');
  const message = await rebuild(chunks as never);
  return { chunks, message: message! };
}

const parts = (message: UIMessage) => message.parts.map((p) => ('toolCallId' in p ? `${p.type}:${p.state}` : p.type === 'text' ? `text:${p.text}` : p.type));
const done = (content: string, status = 'completed') => ['agent_completed', { status, message: { id: 'm_2', role: 'assistant', content } }] as [EventType, object];

test('a takeover: the call that was running ends with an error, the new attempt\'s text in a new step', async () => {
  const { message } = await translate(run(
    ['message_created', { message: { id: 'm_u', role: 'user', content: 'hi' } }],
    ['agent_started', { agent_id: 'ag', agent_name: 'A' }],
    ['agent_thinking', {}],
    ['message_delta', { message_id: 'm_1', delta: 'lost ' }],
    ['tool_executing', { tool_call_id: 'c1', name: 'calculator', arguments: { expression: '1+1' } }],
    ['agent_thinking', { attempt: 2, message_id: 'm_2', restarted: true }],
    ['message_delta', { message_id: 'm_2', delta: 'kept' }],
    done('kept'),
  ));
  assert.is(message.id, RUN);
  assert.equal(parts(message), ['step-start', 'text:lost ', 'tool-calculator:output-error', 'step-start', 'text:kept']);
});

test('an approval that expires: an error outcome from the tool_completed that follows; a denial and a cancel', async () => {
  const asked = (call: string) => ['approval_requested', { tool_call_id: call, tool_name: 'calculator', arguments: { expression: '2*3' }, expires_at: new Date(0).toISOString() }] as [EventType, object];
  const resolved = (call: string, status: string) => ['approval_resolved', { tool_call_id: call, tool_name: 'calculator', status }] as [EventType, object];
  const result = (call: string, text: string) => ['tool_completed', { tool_call_id: call, name: 'calculator', result: text, is_error: true, duration_ms: 0 }] as [EventType, object];
  const start: Array<[EventType, object]> = [['agent_started', { agent_id: 'ag', agent_name: 'A' }], ['agent_thinking', {}]];

  const expired = await translate(run(...start, asked('c1'), resolved('c1', 'expired'), result('c1', 'The request expired.'), ['message_delta', { message_id: 'm_2', delta: 'ok' }], done('ok')));
  assert.equal(parts(expired.message), ['step-start', 'tool-calculator:output-error', 'step-start', 'text:ok']);
  assert.ok(expired.chunks.some((c) => c.type === 'tool-approval-request' && c.approvalId === `${RUN}:c1`));

  const denied = await translate(run(...start, asked('c1'), resolved('c1', 'denied'), result('c1', 'Denied.'), done('')));
  assert.equal(parts(denied.message), ['step-start', 'tool-calculator:output-denied']);

  const cancelled = await translate(run(...start, asked('c1'), resolved('c1', 'cancelled'), done('', 'cancelled')));
  assert.equal(parts(cancelled.message), ['step-start', 'tool-calculator:output-error']);
  assert.equal(cancelled.chunks.at(-1), { type: 'finish', finishReason: 'other' });

  // Waiting: the view says on which call, and the part waits for its answer.
  const view = new AiSdkRunView(RUN);
  for (const event of run(...start, asked('c9'))) view.push(event);
  assert.is(view.waitingOn, 'c9');
});

test.run();
