/**
 * One turn read three ways at once, while it streams: a native socket (the `chat.v1` frames), an
 * `agui.v1` socket (AG-UI events, checked by @ag-ui's validators) and the AI SDK's resume stream
 * (UI message chunks, parsed and folded by the `ai` package): the same text, the same tool calls
 * with the same arguments, and the same results.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useStack, connect, type StackCtx } from './support/fixture.js';
import { AguiSocket } from './support/agui-socket.js';
import { checkEvents, verified } from './support/agui.js';
import { parseChunks, rebuild } from './support/ai-sdk-chat.js';
import { within } from './support/wait.js';

const test = suite<StackCtx>('one turn, three views');
useStack(test);

test('native frames, AG-UI events and AI SDK chunks of one turn with a tool call agree', async (ctx) => {
  const token = await ctx.stack.token('triple');
  const native = await connect(ctx, 'triple');
  // Slow enough that every reader joins while it streams: text, then a calculator call, then text.
  const ack = await native.request('message.send', { content: 'calculate 6*7 and talk about it [[words:40]] [[delay:40]]' });
  const { thread_id: threadId, run_id: runId } = ack.payload as { thread_id: string; run_id: string };

  const agui = await AguiSocket.open(ctx.url, token);
  agui.send('agui.connect', { thread_id: threadId, after_seq: 0 });
  const aiBody = fetch(`${ctx.base}/v1/ai-sdk/chat/${threadId}/stream`, { headers: { authorization: `Bearer ${token}` } }).then(async (res) => {
    assert.is(res.status, 200, 'the turn is running: the stream replays it from its start');
    return res.text();
  });

  const done = await native.completed(runId, 30_000);
  assert.is(done.payload.status, 'completed');
  await agui.untilRunsEnd(1, 30_000);
  const chunks = await parseChunks(await within(aiBody, 30_000, 'the AI SDK stream'));
  agui.close();

  // Native: the deltas of the run's answer, its tool calls and results.
  const frames = native.events(threadId).filter((f) => f.payload.run_id === runId);
  const nativeView = {
    text: frames.filter((f) => f.type === 'message_delta').map((f) => f.payload.delta).join(''),
    calls: frames.filter((f) => f.type === 'tool_executing').map((f) => ({ id: f.payload.tool_call_id, name: f.payload.name, args: f.payload.arguments })),
    results: frames.filter((f) => f.type === 'tool_completed').map((f) => ({ id: f.payload.tool_call_id, result: f.payload.result })),
  };
  assert.ok(nativeView.text.length > 0 && nativeView.calls.length === 1, `a turn with text and one tool call: ${JSON.stringify(nativeView)}`);
  assert.is(nativeView.text, done.payload.message.content, 'the deltas are the stored answer');

  // AG-UI: valid events, a verified run, and the same content.
  const events = agui.events.filter((e) => !e.metadata?.prelude);
  checkEvents(events);
  await verified(agui.events);
  const aguiView = {
    text: events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join(''),
    calls: events.filter((e) => e.type === 'TOOL_CALL_START').map((e) => ({
      id: e.toolCallId,
      name: e.toolCallName,
      args: JSON.parse(events.filter((a) => a.type === 'TOOL_CALL_ARGS' && a.toolCallId === e.toolCallId).map((a) => a.delta).join('')),
    })),
    results: events.filter((e) => e.type === 'TOOL_CALL_RESULT').map((e) => ({ id: e.toolCallId, result: e.content })),
  };

  // AI SDK: the message the SDK folds from the chunks.
  const message = await rebuild(chunks);
  assert.ok(message, 'the chunks build a message');
  const parts = message!.parts as Array<Record<string, any>>;
  const aiView = {
    text: parts.filter((p) => p.type === 'text').map((p) => p.text).join(''),
    calls: parts.filter((p) => String(p.type).startsWith('tool-') || p.type === 'dynamic-tool').map((p) => ({ id: p.toolCallId, name: p.toolName ?? String(p.type).slice('tool-'.length), args: p.input })),
    results: parts.filter((p) => p.state === 'output-available').map((p) => ({ id: p.toolCallId, result: typeof p.output === 'string' ? p.output : JSON.stringify(p.output) })),
  };

  assert.equal(aguiView, nativeView, 'AG-UI reads the turn as the native socket does');
  assert.equal(aiView, nativeView, 'the AI SDK reads the turn as the native socket does');
});

test.run();
