/**
 * The AG-UI input schema (protocol/agui.ts) against @ag-ui/core: its type and RunAgentInput are
 * assignable both ways (tsc checks this file), ajv accepts what @ag-ui/client sends and what
 * RunAgentInputSchema accepts, and refuses what it refuses, naming the field.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunAgentInput } from '@ag-ui/core';
import { RunAgentInputSchema } from '@ag-ui/core/schemas';
import { ajv, describeError } from '../protocol/validate.js';
import { aguiConnectSchema, runAgentInputSchema, type AguiRunInput } from '../protocol/agui.js';

// Assignable both ways: a field the package has that the schema lacks (or the reverse, or a
// different type) fails to compile.
const fromPackage = (input: RunAgentInput): AguiRunInput => input;
const toPackage = (input: AguiRunInput): RunAgentInput => input;
void fromPackage;
void toPackage;

const validate = ajv.compile(runAgentInputSchema);
const connect = ajv.compile(aguiConnectSchema);

const full = {
  threadId: 'thread-1',
  runId: 'run-1',
  protocolVersion: '1.0',
  state: {},
  forwardedProps: {},
  messages: [
    { id: 'm0', role: 'system', content: 'Be brief.' },
    { id: 'm1', role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', source: { type: 'url', value: 'https://example.com/a.png' } }] },
    { id: 'm2', role: 'assistant', content: 'A picture.', toolCalls: [{ id: 'c1', type: 'function', function: { name: 'look', arguments: '{}' } }] },
    { id: 'm3', role: 'tool', toolCallId: 'c1', content: 'a cat' },
    { id: 'm4', role: 'reasoning', content: 'thinking' },
    { id: 'm5', role: 'activity', activityType: 'progress', content: { done: 1 } },
    { id: 'm6', role: 'user', content: 'thanks', extra: 'open objects pass' },
  ],
  tools: [{ name: 'look', description: 'Looks', parameters: { type: 'object' } }],
  context: [{ description: 'page', value: '/home' }],
  resume: [{ interruptId: 'r_1:c1', status: 'resolved', payload: { approved: true } }],
};

test('what RunAgentInputSchema accepts, ajv accepts; tools and context default to []', () => {
  for (const input of [full, { threadId: 't', runId: 'r', messages: [] }]) {
    assert.ok(RunAgentInputSchema.safeParse(input).success, 'the package accepts it');
    const copy = structuredClone(input) as Record<string, unknown>;
    assert.ok(validate(copy), describeError(validate.errors?.[0], 'body'));
    assert.equal(copy.tools ?? null, (input as typeof full).tools ?? [], 'tools');
  }
});

test('what RunAgentInputSchema refuses, ajv refuses, naming the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ runId: 'r', messages: [] }, /threadId is required/],
    [{ threadId: 't', runId: 'r' }, /messages is required/],
    [{ threadId: 't', runId: 'r', messages: [{ id: 'm', role: 'user' }] }, /messages\.0/],
    [{ threadId: 't', runId: 'r', messages: [{ id: 'm', role: 'robot', content: 'x' }] }, /messages\.0/],
    [{ threadId: 't', runId: 'r', messages: [], resume: [{ interruptId: 'i', status: 'maybe' }] }, /resume\.0\.status/],
    [{ threadId: 't', runId: 'r', messages: [], tools: [{ name: 'x' }] }, /tools\.0\.description is required/],
  ];
  for (const [input, why] of bad) {
    assert.not.ok(RunAgentInputSchema.safeParse(input).success, `the package refuses ${JSON.stringify(input)}`);
    assert.not.ok(validate(structuredClone(input)), JSON.stringify(input));
    assert.match(describeError(validate.errors?.[0], 'body'), why);
  }
  // Our own rule on top: a thread id is one of ours (the store's id alphabet and length).
  assert.not.ok(validate({ threadId: 'has space', runId: 'r', messages: [] }));
  assert.match(describeError(validate.errors?.[0], 'body'), /threadId/);
});

test('agui.connect: a thread and an optional position; a part only with a seq', () => {
  assert.ok(connect({ thread_id: 't' }));
  assert.ok(connect({ thread_id: 't', after_seq: 4, after_part: 1 }));
  assert.not.ok(connect({ thread_id: 't', after_part: 1 }));
  assert.not.ok(connect({ thread_id: 't', after_seq: -1 }));
  assert.not.ok(connect({ thread_id: 't', after_seq: 1, extra: true }));
});

test.run();
