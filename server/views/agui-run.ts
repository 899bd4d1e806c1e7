/**
 * One run as the AG-UI view (./agui.ts) sees it: what it has shown so far (its open text, the tool
 * calls already announced) and whether its AG-UI run is open, ended on a wait, or not started.
 * A run's text and tool calls are one assistant message whose id is the run's id (known from its
 * first event, before the stored answer's id is): the calls are its `toolCalls`, each result a tool
 * message after it, as AG-UI clients build them. A run taken over after its worker died restarts
 * its text under the new attempt's answer id (the text streamed before is void).
 */
import type { RunAgentInput } from '@ag-ui/core';
import type { MessageView } from '../../protocol/frames.js';
import { aguiEvent, type AguiEvent } from './agui-events.js';

export interface RunView {
  runId: string;
  /** Its user message (message_created), echoed as RUN_STARTED.input. */
  user?: MessageView;
  /** The assistant message its text and tool calls belong to: the run's id, or a restart's answer id. */
  answerId: string;
  /** queued: no RUN_STARTED yet; open: its AG-UI run is open; paused: that ended on a wait. */
  phase: 'queued' | 'open' | 'paused';
  openText?: string;
  /** Calls whose START/ARGS/END were sent (a request shows a call before it runs). */
  shown: Set<string>;
  /** Calls of the client's own tools: their results come from the client. */
  clientCalls: Set<string>;
}

export function newRun(runId: string): RunView {
  return { runId, answerId: runId, phase: 'queued', shown: new Set(), clientCalls: new Set() };
}

/** RUN_STARTED of the run; with `echo`, its user message as `input` (under the stored id). */
export function runStarted(threadId: string, run: RunView, echo: boolean) {
  const input: RunAgentInput | undefined = echo && run.user
    ? { threadId, runId: run.runId, messages: [{ id: run.user.id, role: 'user', content: run.user.content }], tools: [], context: [] }
    : undefined;
  return aguiEvent('RUN_STARTED', { threadId, runId: run.runId, protocolVersion: '1.0', ...(input ? { input } : {}) });
}

/** TEXT_MESSAGE_END of the run's open text, if one is open. */
export function closeText(run: RunView): AguiEvent[] {
  if (run.openText === undefined) return [];
  const messageId = run.openText;
  run.openText = undefined;
  return [aguiEvent('TEXT_MESSAGE_END', { messageId })];
}

/** The text delta, opening the run's text message first when it is not open. */
export function textDelta(run: RunView, delta: string): AguiEvent[] {
  if (delta === '') return [];
  const messageId = run.answerId;
  const out: AguiEvent[] = [];
  if (run.openText !== messageId) {
    out.push(...closeText(run), aguiEvent('TEXT_MESSAGE_START', { messageId, role: 'assistant' }));
    run.openText = messageId;
  }
  out.push(aguiEvent('TEXT_MESSAGE_CONTENT', { messageId, delta }));
  return out;
}

/** The call's START/ARGS/END, once per call: the arguments as the model gave them (JSON text). */
export function showCall(run: RunView, id: string, name: string, args: unknown): AguiEvent[] {
  if (run.shown.has(id)) return [];
  run.shown.add(id);
  const out = closeText(run);
  out.push(aguiEvent('TOOL_CALL_START', { toolCallId: id, toolCallName: name, parentMessageId: run.answerId }));
  const text = args === undefined ? '' : typeof args === 'string' ? args : JSON.stringify(args);
  if (text !== '') out.push(aguiEvent('TOOL_CALL_ARGS', { toolCallId: id, delta: text }));
  out.push(aguiEvent('TOOL_CALL_END', { toolCallId: id }));
  return out;
}
