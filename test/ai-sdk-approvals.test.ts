/**
 * Tool approval through the AI SDK's own client: an agent that requires approval for the
 * calculator; the run's wait is a `tool-approval-request` that ends the response, the answer
 * (addToolApprovalResponse, sent by sendAutomaticallyWhen) comes back in the next request and the
 * same assistant message goes on with the tool's output or its denial. Forged, foreign and second
 * answers are refused and the tool does not run; a waiting run resumes to its request and stops.
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from 'ai';
import { listEventsAfter } from '../db/event-reads.repository.js';
import type { ThreadEvent } from '../protocol/frames.js';
import { signToken } from '../server/auth.js';
import { chatClient, parseChunks, type ChatClient } from './support/ai-sdk-chat.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { waitFor, within } from './support/wait.js';

interface Ctx extends StackCtx {
  alice: string;
  bob: string;
  agentId: string;
}

const WORKSPACE = 'approvals';
const test = suite<Ctx>('AI SDK tool approval');
useStack(test, {
  setup: async (ctx) => {
    const sign = (sub: string, role?: string) =>
      signToken(ctx.stack.secret, { sub, workspace: WORKSPACE, ttlSeconds: 3600, ...(role ? { extra: { role } } : {}) });
    ctx.alice = await sign('ai-approver');
    ctx.bob = await sign('ai-stranger');
    const res = await fetch(`${ctx.base}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await sign('ai-admin', 'admin')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Careful', tools: ['calculator'], require_approval: ['calculator'] }),
    });
    assert.is(res.status, 201, await res.clone().text());
    ctx.agentId = (await res.json()).id;
  },
});

async function events(ctx: Ctx, threadId: string): Promise<ThreadEvent[]> {
  return (await listEventsAfter(ctx.node.db, threadId, 0)).map((e) => JSON.parse(e.frame) as ThreadEvent);
}

function toolParts(message: UIMessage) {
  return message.parts.filter((p): p is Extract<UIMessage['parts'][number], { toolCallId: string }> => 'toolCallId' in p);
}

function textOf(message: UIMessage): string {
  return message.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
}

/** A new chat with the careful agent whose first turn waits for the calculator's approval. */
async function waitingChat(ctx: Ctx): Promise<ChatClient & { id: string; approvalId: string; toolCallId: string }> {
  const id = `chat-${randomUUID()}`;
  const client = chatClient(ctx.base, ctx.alice, id, { body: { agent_id: ctx.agentId }, sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses });
  await within(client.chat.sendMessage({ text: 'calculate 6*7' }), 20_000, 'the turn up to its approval request');
  assert.is(client.chat.status, 'ready', client.chat.error?.message);
  const chunks = await parseChunks(client.responses[0]!.body);
  assert.equal(chunks.at(-1), { type: 'finish', finishReason: 'tool-calls' });
  const request = chunks.find((c) => c.type === 'tool-approval-request');
  assert.ok(request && request.type === 'tool-approval-request', 'a tool-approval-request');
  const [part] = toolParts(client.chat.messages[1]!);
  assert.is(part!.state, 'approval-requested');
  assert.equal(part!.input, { expression: '6*7' });
  assert.is(part!.toolCallId, request.toolCallId);
  assert.is((part as { approval: { id: string } }).approval.id, request.approvalId);
  const stored = await events(ctx, id);
  assert.ok(stored.some((e) => e.type === 'approval_requested' && e.payload.tool_call_id === request.toolCallId));
  assert.not.ok(stored.some((e) => e.type === 'tool_executing'), 'the tool has not run');
  return { ...client, id, approvalId: request.approvalId, toolCallId: request.toolCallId };
}

/** The request the client sends with its answer (for replaying it by hand). */
function answerBody(client: ChatClient & { id: string }, approved: boolean) {
  const assistant = structuredClone(client.chat.messages[1]!) as any;
  for (const part of assistant.parts) if (part.toolCallId) Object.assign(part, { state: 'approval-responded', approval: { ...part.approval, approved } });
  return { id: client.id, messages: [client.chat.messages[0], assistant], trigger: 'submit-message', messageId: assistant.id };
}

async function postChat(ctx: Ctx, token: string, body: unknown) {
  const res = await fetch(`${ctx.base}/v1/ai-sdk/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: await res.text() };
}

test('approved: the same assistant message goes on with the tool\'s output and the answer; a second answer is refused', async (ctx) => {
  const client = await waitingChat(ctx);
  const { chat, responses } = client;
  const assistantId = chat.messages[1]!.id;
  const before = structuredClone(chat.messages[1]!);
  await chat.addToolApprovalResponse({ id: client.approvalId, approved: true });
  await waitFor(() => responses.length === 2 && chat.status === 'ready' && textOf(chat.messages[1]!).includes('42'), 20_000, () => `the continued answer (${chat.status}, ${responses.length})`);
  await responses[1]!.done;
  assert.is(chat.error, undefined);
  assert.is(chat.messages.length, 2, 'no new message: the assistant message went on');
  const assistant = chat.messages[1]!;
  assert.is(assistant.id, assistantId);
  assert.equal(assistant.parts.slice(0, before.parts.length - 1), before.parts.slice(0, -1), 'what came before is unchanged');
  const [part] = toolParts(assistant);
  assert.is(toolParts(assistant).length, 1, 'one tool part');
  assert.is(part!.state, 'output-available');
  assert.is(part!.output, '42');

  const continued = await parseChunks(responses[1]!.body);
  assert.equal(continued[0], { type: 'start', messageId: assistantId });
  assert.equal(continued.at(-1), { type: 'finish', finishReason: 'stop' });
  assert.not.ok(continued.some((c) => c.type === 'tool-input-available' || c.type === 'tool-approval-request'), 'nothing the client had is sent again');
  const stored = await events(ctx, client.id);
  const completed = stored.find((e) => e.type === 'agent_completed');
  assert.ok(completed && completed.type === 'agent_completed' && completed.payload.status === 'completed');
  assert.is(textOf(assistant), completed.payload.message.content);
  assert.ok(stored.some((e) => e.type === 'approval_resolved' && e.payload.status === 'approved'));
  assert.ok(stored.some((e) => e.type === 'tool_completed' && e.payload.result === '42' && !e.payload.is_error));

  const second = await postChat(ctx, ctx.alice, answerBody(client, false));
  assert.is(second.status, 409);
  assert.is(JSON.parse(second.body).code, 'already_answered');
});

test('denied with a reason: tool-output-denied, the tool never runs, the model is told and the message goes on', async (ctx) => {
  const client = await waitingChat(ctx);
  const { chat, responses } = client;
  await chat.addToolApprovalResponse({ id: client.approvalId, approved: false, reason: 'not today' });
  await waitFor(() => responses.length === 2 && chat.status === 'ready' && toolParts(chat.messages[1]!)[0]?.state === 'output-denied', 20_000, 'the denied answer');
  await responses[1]!.done;
  assert.is(chat.messages.length, 2);
  const continued = await parseChunks(responses[1]!.body);
  assert.ok(continued.some((c) => c.type === 'tool-output-denied' && c.toolCallId === client.toolCallId));
  assert.equal(continued.at(-1), { type: 'finish', finishReason: 'stop' });
  const stored = await events(ctx, client.id);
  assert.not.ok(stored.some((e) => e.type === 'tool_executing'), 'the tool never ran');
  const resolved = stored.find((e) => e.type === 'approval_resolved');
  assert.ok(resolved && resolved.type === 'approval_resolved' && resolved.payload.status === 'denied' && resolved.payload.reason === 'not today');
  const completed = stored.find((e) => e.type === 'agent_completed');
  assert.ok(completed && completed.type === 'agent_completed' && completed.payload.status === 'completed');
  assert.is(textOf(chat.messages[1]!), completed.payload.message.content);
});

test('a forged id, a stranger\'s answer and another chat\'s run are refused; the call still waits, and resumes to its request', async (ctx) => {
  const client = await waitingChat(ctx);
  const body = answerBody(client, true);
  const forged = structuredClone(body);
  const part = forged.messages[1].parts.find((p: any) => p.toolCallId);
  part.approval.id = `${client.approvalId.split(':')[0]}:call_forged`;
  assert.is((await postChat(ctx, ctx.alice, forged)).status, 404, 'an unknown call of the run');
  part.approval.id = `run_${'x'.repeat(22)}:${client.toolCallId}`;
  assert.is((await postChat(ctx, ctx.alice, forged)).status, 404, 'an unknown run');
  assert.is((await postChat(ctx, ctx.bob, body)).status, 404, 'the stranger names alice\'s chat');
  assert.is((await postChat(ctx, ctx.bob, { ...body, id: `chat-${randomUUID()}` })).status, 404, 'the stranger\'s own chat');
  assert.is((await postChat(ctx, ctx.alice, { ...body, id: `chat-${randomUUID()}` })).status, 404, 'alice\'s other chat');
  const stored = await events(ctx, client.id);
  assert.not.ok(stored.some((e) => e.type === 'approval_resolved' || e.type === 'tool_executing'), 'nothing was answered, nothing ran');

  // A client coming back (a reload): the waiting turn is replayed up to its request, and ends there.
  const other = chatClient(ctx.base, ctx.alice, client.id);
  await within(other.chat.resumeStream(), 10_000, 'the resumed waiting turn');
  assert.is(other.responses[0]!.status, 200);
  const [waiting] = toolParts(other.chat.messages[0]!);
  assert.is(waiting!.state, 'approval-requested');
  assert.is((waiting as { approval: { id: string } }).approval.id, client.approvalId);

  // Stop works on a waiting run.
  const stop = await fetch(`${ctx.base}/v1/ai-sdk/chat/${client.id}/stop`, { method: 'POST', headers: { authorization: `Bearer ${ctx.alice}` } });
  assert.is(stop.status, 200);
  await waitFor(async () => (await events(ctx, client.id)).some((e) => e.type === 'agent_completed'), 10_000, 'the cancelled run');
  const after = await events(ctx, client.id);
  assert.ok(after.some((e) => e.type === 'agent_completed' && e.payload.status === 'cancelled'));
  assert.not.ok(after.some((e) => e.type === 'tool_executing'));
  assert.is((await postChat(ctx, ctx.alice, body)).status, 409, 'answering a cancelled wait');
});

test.run();
