/**
 * What each thread event changes in a thread's state, one reducer per event type (the table is
 * typed so that a new event type without a reducer is a compile error). An event type this client
 * does not know (a newer server) is kept in the log and changes nothing.
 */
import type { EventPayloads, EventType, MessageView, ThreadEvent } from '../frames.js';
import type { ChatMessage, PendingCall, RunView, ThreadState } from './thread-state.js';

type Reducers = { [T in EventType]: (state: ThreadState, payload: ThreadEvent<T>['payload']) => void };

const reducers: Reducers = {
  message_created(state, p) {
    upsertMessage(state, p.message, p.seq);
    if (p.message.role === 'user' && p.run_id) {
      state.runs[p.run_id] ??= { runId: p.run_id, status: 'queued', thinking: false, tools: [] };
      state.activeRunId = p.run_id;
    }
  },
  agent_started(state, p) {
    const run = runOf(state, p.run_id);
    run.status = 'running';
    run.agentId = p.agent_id;
    run.agentName = p.agent_name;
  },
  agent_thinking(state, p) {
    const run = runOf(state, p.run_id);
    run.status = 'running';
    run.thinking = true;
    if (p.attempt !== undefined) run.attempt = p.attempt;
    if (p.restarted) {
      // A new attempt took over: the text streamed by the one that died is void, and a tool it
      // had running will never report back.
      state.messages = state.messages.filter((m) => !(m.role === 'assistant' && m.runId === run.runId));
      abandonTools(run);
    }
    if (p.message_id) run.messageId = p.message_id;
  },
  message_delta(state, p) {
    const run = runOf(state, p.run_id);
    run.thinking = false;
    run.messageId = p.message_id;
    let message = messageById(state, p.message_id);
    if (!message) {
      message = { id: p.message_id, role: 'assistant', content: '', runId: run.runId, createdAt: p.timestamp, seq: p.seq, streaming: true };
      state.messages.push(message);
    }
    message.content += p.delta;
  },
  tool_executing(state, p) {
    const run = runOf(state, p.run_id);
    run.thinking = false;
    run.tools.push({ toolCallId: p.tool_call_id, name: p.name, arguments: p.arguments, status: 'running' });
  },
  tool_completed(state, p) {
    const run = runOf(state, p.run_id);
    let tool = run.tools.find((t) => t.toolCallId === p.tool_call_id && t.status === 'running');
    if (!tool) run.tools.push((tool = { toolCallId: p.tool_call_id, name: p.name, arguments: undefined, status: 'running' }));
    tool.status = p.is_error ? 'error' : 'completed';
    tool.result = p.result;
    tool.durationMs = p.duration_ms;
    // The model reads the result next (a client tool's result ends the run's wait).
    run.thinking = true;
    settle(run, p.tool_call_id);
  },
  approval_requested(state, p) {
    wait(runOf(state, p.run_id), 'approval', p);
  },
  approval_resolved(state, p) {
    const run = runOf(state, p.run_id);
    settle(run, p.tool_call_id);
    run.thinking = p.status !== 'cancelled';
  },
  client_tool_requested(state, p) {
    wait(runOf(state, p.run_id), 'client', p);
  },
  agent_completed(state, p) {
    const run = runOf(state, p.run_id);
    run.status = p.status;
    run.thinking = false;
    run.messageId = p.message.id;
    if (p.error) run.error = p.error;
    if (p.usage) run.usage = p.usage;
    run.pending = undefined;
    abandonTools(run);
    // The stored message is the final word on the text (the deltas joined equal it).
    const message = upsertMessage(state, { ...p.message, run_id: p.run_id ?? p.message.run_id }, p.seq);
    message.status = p.status;
    if (state.activeRunId === run.runId) state.activeRunId = undefined;
  },
};

/** Folds one event into the state (the caller keeps the seq order). */
export function reduce(state: ThreadState, event: ThreadEvent): void {
  const reducer = reducers[event.type] as ((s: ThreadState, p: EventPayloads[EventType] & ThreadEvent['payload']) => void) | undefined;
  // An event type this client does not know (a newer server): kept in the log, nothing to show.
  reducer?.(state, event.payload as never);
}

function runOf(state: ThreadState, runId: string | undefined): RunView {
  const id = runId ?? '';
  let run = state.runs[id];
  if (!run) state.runs[id] = run = { runId: id, status: 'running', thinking: false, tools: [] };
  if (run.status === 'queued' || run.status === 'running' || run.status === 'waiting') state.activeRunId = id;
  return run;
}

/** The run waits (holding no worker) for the call to be answered. */
function wait(run: RunView, kind: PendingCall['kind'], p: { tool_call_id: string; tool_name: string; arguments: unknown; expires_at: string }): void {
  run.status = 'waiting';
  run.thinking = false;
  run.pending = { kind, toolCallId: p.tool_call_id, toolName: p.tool_name, arguments: p.arguments, expiresAt: p.expires_at };
}

/** The call the run waited on is answered: it goes on. */
function settle(run: RunView, toolCallId: string): void {
  if (run.pending?.toolCallId !== toolCallId) return;
  run.pending = undefined;
  run.status = 'running';
}

/** Tools still running when their attempt or run ended: no result will come. */
function abandonTools(run: RunView): void {
  for (const tool of run.tools) if (tool.status === 'running') tool.status = 'abandoned';
}

/** The message with this id; searched from the newest, where streamed text almost always lands. */
function messageById(state: ThreadState, id: string): ChatMessage | undefined {
  for (let i = state.messages.length - 1; i >= 0; i--) if (state.messages[i]!.id === id) return state.messages[i];
  return undefined;
}

/** A stored message (created, or a run's final answer): no longer streaming. */
function upsertMessage(state: ThreadState, view: MessageView, seq: number): ChatMessage {
  let message = messageById(state, view.id);
  if (!message) {
    message = { id: view.id, role: view.role, content: view.content, seq, streaming: false };
    state.messages.push(message);
  }
  message.content = view.content;
  message.streaming = false;
  if (view.run_id) message.runId = view.run_id;
  if (view.created_at) message.createdAt = view.created_at;
  return message;
}
