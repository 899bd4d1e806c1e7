/**
 * buildPrompt on constructed histories, shaped the way the turn processor stores them: assistant
 * rows with tool_calls and content '' during tool rounds, tool rows with the results, then one
 * final assistant row with all of the run's text. Every output goes through `assertValid`, the
 * OpenAI rules for tool messages.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildPrompt, DEFAULT_CONTEXT_TOKENS, estimateTokens, messageTokens, type ChatMessage } from '../workers/context.js';
import type { Agent, Message, ToolCallRecord } from '../db/schema.js';

const SYSTEM = 'You are terse.';
const agent = {
  id: 'ag_test', workspace_id: null, name: 'Test', model: null, system_prompt: SYSTEM, temperature: null,
  tools: ['calculator'], max_tool_iterations: 8, busy_policy: 'enqueue', created_at: new Date(0), updated_at: new Date(0),
  deleted_at: null,
} as Agent;

let rowSeq = 0;
function row(role: Message['role'], content: string, run: string | null, extra: Partial<Message> = {}): Message {
  rowSeq++;
  return {
    id: `m_${rowSeq}`, thread_id: 't_1', run_id: run, role, content, tool_calls: null, tool_call_id: null,
    client_message_id: null, created_at: new Date(rowSeq), ...extra,
  } as Message;
}
const user = (run: string | null, text: string) => row('user', text, run);
const answer = (run: string | null, text: string) => row('assistant', text, run);
const call = (id: string, name = 'calculator', args = '{"expression":"1+1"}'): ToolCallRecord => ({
  id, type: 'function', function: { name, arguments: args },
});
/** A tool round as the processor stores it: the calls with content '' ... */
const asks = (run: string | null, ...calls: ToolCallRecord[]) => row('assistant', '', run, { tool_calls: calls });
/** ... and one row per result. */
const result = (run: string | null, id: string | null, content: string) => row('tool', content, run, { tool_call_id: id });

/** The API's rules: tool results answer exactly the calls of the assistant message right before them. */
function assertValid(messages: ChatMessage[]): void {
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role === 'tool') assert.unreachable(`message ${i}: tool result ${m.tool_call_id} does not follow the call that asked for it`);
    if (m.role !== 'assistant') continue;
    if (!m.tool_calls) {
      assert.ok(typeof m.content === 'string' && m.content.length > 0, `message ${i}: an assistant message needs text or tool_calls`);
      continue;
    }
    assert.ok(m.tool_calls.length > 0, `message ${i}: tool_calls must not be empty`);
    const asked = m.tool_calls.map((c) => c.id);
    assert.equal(new Set(asked).size, asked.length, `message ${i}: tool_call ids are unique`);
    const answered: string[] = [];
    while (messages[i + 1]?.role === 'tool') answered.push((messages[++i] as { tool_call_id: string }).tool_call_id);
    assert.equal([...answered].sort(), [...asked].sort(), `message ${i}: every call answered exactly once, by nothing else`);
  }
}

/** The estimated size of a prompt, with the estimate buildPrompt uses by default. */
const size = (messages: ChatMessage[], count?: (text: string) => number) => messages.reduce((n, m) => n + messageTokens(m, count), 0);

/** Four turns, the third with a tool round; content sizes are multiples of 4 characters. */
function fourTurns() {
  const history = [
    user('r1', 'u1'.repeat(20)), answer('r1', 'a1'.repeat(20)),
    user('r2', 'u2'.repeat(20)), answer('r2', 'a2'.repeat(20)),
    user('r3', 'u3'.repeat(20)), asks('r3', call('c3')), result('r3', 'c3', '2'), answer('r3', 'a3'.repeat(20)),
    user('r4', 'u4'.repeat(20)),
  ];
  const turns: ChatMessage[][] = [
    [{ role: 'user', content: 'u1'.repeat(20) }, { role: 'assistant', content: 'a1'.repeat(20) }],
    [{ role: 'user', content: 'u2'.repeat(20) }, { role: 'assistant', content: 'a2'.repeat(20) }],
    [
      { role: 'user', content: 'u3'.repeat(20) },
      { role: 'assistant', content: null, tool_calls: [call('c3')] },
      { role: 'tool', tool_call_id: 'c3', content: '2' },
      { role: 'assistant', content: 'a3'.repeat(20) },
    ],
    [{ role: 'user', content: 'u4'.repeat(20) }],
  ];
  return { history, turns };
}
const system: ChatMessage = { role: 'system', content: SYSTEM };

test('everything fits: the whole history, in order, in the OpenAI format', () => {
  const { history, turns } = fourTurns();
  const prompt = buildPrompt(agent, history);
  assert.equal(prompt, [system, ...turns.flat()]);
  assertValid(prompt);
});

test('the estimate: ceil(chars / 4) + 4 per message + the tool_calls JSON, or the given counter', () => {
  assert.equal(estimateTokens(''), 0);
  assert.equal(estimateTokens('abcde'), 2);
  assert.equal(messageTokens({ role: 'user', content: 'abcdefgh' }), 4 + 2);
  const asking: ChatMessage = { role: 'assistant', content: null, tool_calls: [call('c1')] };
  assert.equal(messageTokens(asking), 4 + Math.ceil(JSON.stringify([call('c1')]).length / 4));
  assert.equal(messageTokens({ role: 'tool', tool_call_id: 'c1', content: '42' }, (text) => text.length * 10), 4 + 20);
});

test('over budget: the oldest whole turns go first, and the prompt fits', () => {
  const { history, turns } = fourTurns();
  const fixed = size([system, ...turns[3]!]);
  const turn = turns.map((t) => size(t));
  // Exactly room for turns 3 and 2 on top of the system prompt and the latest turn.
  const budget = fixed + turn[2]! + turn[1]!;
  assert.equal(buildPrompt(agent, history, { budgetTokens: budget }), [system, ...turns.slice(1).flat()]);
  const tighter = buildPrompt(agent, history, { budgetTokens: budget - 1 });
  assert.equal(tighter, [system, ...turns.slice(2).flat()]);
  assert.ok(size(tighter) <= budget - 1);
  assertValid(tighter);
});

test('no gaps: once a turn does not fit, smaller older turns are not kept either', () => {
  const history = [user('r1', 'tiny'), user('r2', 'x'.repeat(400)), answer('r2', 'ok'), user('r3', 'now')];
  const prompt = buildPrompt(agent, history, { budgetTokens: 60 });
  assert.equal(prompt, [system, { role: 'user', content: 'now' }]);
});

test('the system prompt and the latest turn are kept even when they alone exceed the budget', () => {
  const { history, turns } = fourTurns();
  for (const budgetTokens of [0, 1, size([system, ...turns[3]!]) - 1]) {
    assert.equal(buildPrompt(agent, history, { budgetTokens }), [system, ...turns[3]!]);
  }
  // A latest turn that is itself a long tool-using run is kept whole, not trimmed.
  const long = [
    user('r1', 'old'), answer('r1', 'old answer'),
    user('r2', 'q'.repeat(1000)), asks('r2', call('c1'), call('c2')), result('r2', 'c1', 'r'.repeat(1000)), result('r2', 'c2', 'two'),
  ];
  const prompt = buildPrompt(agent, long, { budgetTokens: 10 });
  assert.equal(prompt, [
    system,
    { role: 'user', content: 'q'.repeat(1000) },
    { role: 'assistant', content: null, tool_calls: [call('c1'), call('c2')] },
    { role: 'tool', tool_call_id: 'c1', content: 'r'.repeat(1000) },
    { role: 'tool', tool_call_id: 'c2', content: 'two' },
  ]);
  assertValid(prompt);
});

test('no system message when the agent has no system prompt', () => {
  const prompt = buildPrompt({ ...agent, system_prompt: '' }, [user('r1', 'hi')], { budgetTokens: 0 });
  assert.equal(prompt, [{ role: 'user', content: 'hi' }]);
  assert.equal(buildPrompt({ ...agent, system_prompt: '' }, []), []);
});

test('every budget cuts at a turn boundary: tool calls and their results stay together', () => {
  const { history, turns } = fourTurns();
  const total = size([system, ...turns.flat()]);
  const kept = new Set<number>();
  for (let budgetTokens = 0; budgetTokens <= total + 5; budgetTokens++) {
    const prompt = buildPrompt(agent, history, { budgetTokens });
    assertValid(prompt);
    // The prompt is always the system prompt plus the newest k turns, exactly.
    const k = turns.findIndex((_, from) => JSON.stringify(prompt) === JSON.stringify([system, ...turns.slice(from).flat()]));
    assert.ok(k >= 0, `budget ${budgetTokens}: not a whole-turn suffix: ${JSON.stringify(prompt)}`);
    if (k < turns.length - 1) assert.ok(size(prompt) <= budgetTokens, `budget ${budgetTokens}: over budget with droppable turns`);
    kept.add(turns.length - k);
  }
  assert.equal([...kept].sort(), [1, 2, 3, 4], 'the sweep saw every cut');
});

test('the default budget is DEFAULT_CONTEXT_TOKENS', () => {
  const history: Message[] = [];
  for (let i = 0; i < 100; i++) history.push(user(`r${i}`, `question ${i} ${'q'.repeat(1000)}`), answer(`r${i}`, 'a'.repeat(1000)));
  history.push(user('last', 'the question'));
  const prompt = buildPrompt(agent, history);
  assert.ok(size(prompt) <= DEFAULT_CONTEXT_TOKENS, `${size(prompt)} tokens`);
  assert.ok(size(prompt) > DEFAULT_CONTEXT_TOKENS - 600, 'fills the budget up to one turn');
  assert.equal(prompt.at(-1), { role: 'user', content: 'the question' });
  assert.equal(prompt.at(-3), { role: 'user', content: `question 99 ${'q'.repeat(1000)}` });
  assertValid(prompt);
});

test('a pluggable counter decides what fits', () => {
  const { history, turns } = fourTurns();
  // A counter that says 0 for any text leaves only the 4 framing tokens per message.
  const prompt = buildPrompt(agent, history, { budgetTokens: 4 * 6, countTokens: () => 0 });
  assert.equal(prompt, [system, ...turns.slice(2).flat()]);
});

test('a cancelled run: calls without results are dropped, the text it wrote is kept', () => {
  const history = [
    // Cancelled during the second of two parallel calls: one result stored, then the final row.
    user('r1', 'calculate two things'), asks('r1', call('c1'), call('c2')), result('r1', 'c1', '2'), answer('r1', 'Partial answer'),
    // Cancelled during its only call: no result at all; its final row is empty.
    user('r2', 'calculate again'), asks('r2', call('c3')), answer('r2', ''),
    // Failed after a call whose row carried text, and never wrote a final row.
    user('r3', 'and again'), row('assistant', 'Let me check.', 'r3', { tool_calls: [call('c4')] }),
    user('r4', 'now?'),
  ];
  const prompt = buildPrompt(agent, history);
  assert.equal(prompt, [
    system,
    { role: 'user', content: 'calculate two things' },
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: '2' },
    { role: 'assistant', content: 'Partial answer' },
    { role: 'user', content: 'calculate again' },
    { role: 'user', content: 'and again' },
    { role: 'assistant', content: 'Let me check.' },
    { role: 'user', content: 'now?' },
  ]);
  assertValid(prompt);
});

test('a complete tool round with no final row (the run died after the tools) stays valid', () => {
  const history = [user('r1', 'calc'), asks('r1', call('c1')), result('r1', 'c1', '2'), user('r2', 'next')];
  const prompt = buildPrompt(agent, history);
  assert.equal(prompt, [
    system,
    { role: 'user', content: 'calc' },
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: '2' },
    { role: 'user', content: 'next' },
  ]);
  assertValid(prompt);
});

test('orphan tool rows are dropped: unknown id, no id, after a text message, a repeated result', () => {
  const history = [
    user('r1', 'q1'), result('r1', 'ghost', 'nobody asked'), answer('r1', 'a1'), result('r1', null, 'no id'),
    user('r2', 'q2'), asks('r2', call('c1')), result('r2', 'c1', 'first'), result('r2', 'c1', 'again'), result('r2', 'c9', 'stray'),
    answer('r2', 'a2'), result('r2', 'c1', 'late'),
    user('r3', 'q3'),
  ];
  const prompt = buildPrompt(agent, history);
  assert.equal(prompt, [
    system,
    { role: 'user', content: 'q1' },
    { role: 'assistant', content: 'a1' },
    { role: 'user', content: 'q2' },
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: 'first' },
    { role: 'assistant', content: 'a2' },
    { role: 'user', content: 'q3' },
  ]);
  assertValid(prompt);
});

test('a call id repeated within one tool_calls row is asked and answered once', () => {
  const prompt = buildPrompt(agent, [user('r1', 'q'), asks('r1', call('c1'), call('c1')), result('r1', 'c1', '2'), answer('r1', 'a')]);
  assert.equal(prompt.slice(2, 4), [
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: '2' },
  ]);
  assertValid(prompt);
});

test('a message sent while an earlier run streamed: turns follow runs, not storage order', () => {
  // r2's user message was stored between r1's tool round and r1's final answer (enqueue policy).
  const history = [
    user('r1', 'calc'), asks('r1', call('c1')), result('r1', 'c1', '2'),
    user('r2', 'second question'),
    answer('r1', 'The answer is 2.'),
  ];
  const r1Turn: ChatMessage[] = [
    { role: 'user', content: 'calc' },
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: '2' },
    { role: 'assistant', content: 'The answer is 2.' },
  ];
  const prompt = buildPrompt(agent, history, { runId: 'r2' });
  assert.equal(prompt, [system, ...r1Turn, { role: 'user', content: 'second question' }]);
  assertValid(prompt);
  // The latest turn is r2's: under a budget that fits nothing else, r1 is what goes.
  assert.equal(buildPrompt(agent, history, { runId: 'r2', budgetTokens: 0 }), [system, { role: 'user', content: 'second question' }]);
});

test('runId: the run being answered is the latest turn; later queued sends are left out', () => {
  const history = [user('r1', 'first'), answer('r1', 'one'), user('r2', 'second'), user('r3', 'third')];
  assert.equal(buildPrompt(agent, history, { runId: 'r2' }), [
    system, { role: 'user', content: 'first' }, { role: 'assistant', content: 'one' }, { role: 'user', content: 'second' },
  ]);
  // r2 is kept over budget as the latest turn; r3, stored but not yet being answered, is not.
  assert.equal(buildPrompt(agent, history, { runId: 'r2', budgetTokens: 0 }), [system, { role: 'user', content: 'second' }]);
  // Without the id (or with an unknown one) the last user message is the latest turn.
  assert.equal(buildPrompt(agent, history, { budgetTokens: 0 }).at(-1), { role: 'user', content: 'third' });
  assert.equal(buildPrompt(agent, history, { runId: 'r_unknown', budgetTokens: 0 }).at(-1), { role: 'user', content: 'third' });
});

test('rows without a run_id group by position; system rows stay in their turn', () => {
  const history = [
    row('system', 'preamble', null),
    user(null, 'q1'), asks(null, call('c1')), result(null, 'c1', '2'), answer(null, 'a1'),
    user(null, 'q2'), row('system', 'note', null),
  ];
  const prompt = buildPrompt(agent, history);
  assert.equal(prompt, [
    system,
    { role: 'system', content: 'preamble' },
    { role: 'user', content: 'q1' },
    { role: 'assistant', content: null, tool_calls: [call('c1')] },
    { role: 'tool', tool_call_id: 'c1', content: '2' },
    { role: 'assistant', content: 'a1' },
    { role: 'user', content: 'q2' },
    { role: 'system', content: 'note' },
  ]);
  // The note belongs to the latest turn, so it survives any budget; the preamble is a turn of its own.
  assert.equal(buildPrompt(agent, history, { budgetTokens: 0 }), [system, { role: 'user', content: 'q2' }, { role: 'system', content: 'note' }]);
});

test('the input rows are not modified', () => {
  const { history } = fourTurns();
  const before = JSON.stringify(history);
  buildPrompt(agent, history, { budgetTokens: 50 });
  assert.equal(JSON.stringify(history), before);
});

test('random damaged histories under random budgets: always valid, always ending with the latest question', () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
  for (let trial = 0; trial < 500; trial++) {
    const history: Message[] = [];
    const turnCount = 1 + Math.floor(random() * 6);
    let callSeq = 0;
    for (let t = 0; t < turnCount; t++) {
      const run = `r${t}`;
      history.push(user(run, `question ${t} ${'x'.repeat(Math.floor(random() * 200))}`));
      if (t === turnCount - 1 && random() < 0.7) break;
      for (let round = Math.floor(random() * 3); round > 0; round--) {
        const calls = Array.from({ length: 1 + Math.floor(random() * 3) }, () => call(`c${++callSeq}`));
        history.push(row('assistant', random() < 0.2 ? 'thinking aloud' : '', run, { tool_calls: calls }));
        for (const c of calls) if (random() < 0.8) history.push(result(run, c.id, `result of ${c.id}`));
        if (random() < 0.1) history.push(result(run, pick(['c0', null, `c${callSeq + 50}`]), 'orphan'));
      }
      if (random() < 0.8) history.push(answer(run, random() < 0.2 ? '' : `answer ${t}`));
    }
    const prompt = buildPrompt(agent, history, { budgetTokens: Math.floor(random() * 400) });
    assertValid(prompt);
    assert.equal(prompt[0], system);
    const lastQuestion = history.filter((m) => m.role === 'user').at(-1)!.content;
    assert.ok(prompt.some((m) => m.role === 'user' && m.content === lastQuestion), `trial ${trial}: the latest question is kept`);
  }
});

test.run();
