/**
 * The one mapping from stored thread events to AG-UI 1.0 events (@ag-ui/core), live and replayed
 * alike. Deterministic: the same events in the same order give the same AG-UI events, each with
 * its stored event's seq in `metadata.seq` and, where one stored event gives several, its place
 * among them in `metadata.part`. A stream starting after a cut translates from the start of the run
 * open at the cut and drops what the client had (./agui-replay.ts).
 *
 *   message_created (user)   nothing (RUN_STARTED.input carries it to followers)
 *   agent_started            RUN_STARTED
 *   agent_thinking           restarted: TEXT_MESSAGE_END of the void text; text goes on under the new answer id
 *   message_delta            TEXT_MESSAGE_START (the run's message, when not open), TEXT_MESSAGE_CONTENT
 *   tool_executing           TEXT_MESSAGE_END, TOOL_CALL_START/ARGS/END (unless shown already)
 *   tool_completed           TOOL_CALL_RESULT (a client tool's own result only where echoed)
 *   approval_requested       the call, RUN_FINISHED {outcome: interrupt}: the AG-UI run ends
 *   client_tool_requested    the call, RUN_FINISHED {outcome: success, pendingToolCallIds}
 *   approval_resolved        RUN_STARTED again (same run id): the run goes on
 *   agent_completed          TEXT_MESSAGE_END, RUN_FINISHED (success, cancelled) or RUN_ERROR
 *
 * A run that never started (cancelled while queued) is RUN_STARTED + RUN_FINISHED {cancelled};
 * on a thread's stream, once the open run has ended (AG-UI runs do not nest).
 */
import type { ThreadEvent } from '../../protocol/frames.js';
import {
  aguiEvent, APPROVAL_ANSWER, interruptId, resultMessageId, tokenUsage, type AguiEvent, type AguiOut, type ByName,
} from './agui-events.js';
import { closeText, newRun, runStarted, showCall, textDelta, type RunView } from './agui-run.js';

export interface AguiViewOptions {
  /**
   * What the client sent is echoed: RUN_STARTED carries the run's user message as `input.messages`
   * (its stored id), and a client tool's result is a TOOL_CALL_RESULT, so a follower learns them.
   * Off where the client sent them itself (it has them under its own ids).
   */
  echoInput: boolean;
}

type Outcome = NonNullable<ByName['RUN_FINISHED']['outcome']>;
type Completed = Extract<ThreadEvent, { type: 'agent_completed' }>['payload'];

/** Translates one thread's events (or one run's), in seq order. */
export class AguiView {
  private readonly runs = new Map<string, RunView>();
  /** The run whose AG-UI run is open. */
  private current?: RunView;
  /** Never-started runs that ended while another run was open: sent when it ends. */
  private deferred: AguiEvent[] = [];

  constructor(readonly threadId: string, private readonly options: AguiViewOptions) {}

  /** Whether this view has seen the run (its first event or a later one). */
  knows(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** The AG-UI events of one stored event, each with its place in the stream. */
  translate(event: ThreadEvent): AguiOut[] {
    const out = this.events(event);
    const timestamp = Date.parse(event.payload.timestamp);
    const { seq } = event.payload;
    return out.map((e, part) => ({ ...e, timestamp, metadata: out.length > 1 ? { seq, part } : { seq } }) as AguiOut);
  }

  private events(event: ThreadEvent): AguiEvent[] {
    const runId = event.payload.run_id;
    if (!runId) return [];
    let run = this.runs.get(runId);
    if (!run) this.runs.set(runId, (run = newRun(runId)));
    switch (event.type) {
      case 'message_created':
        if (event.payload.message.role === 'user') run.user = event.payload.message;
        return [];
      case 'agent_started':
        return run.phase === 'queued' ? this.resume(run) : [];
      case 'agent_thinking': {
        const out = this.resume(run);
        if (!event.payload.restarted) return out;
        out.push(...closeText(run));
        run.answerId = event.payload.message_id ?? run.answerId;
        return out;
      }
      case 'message_delta':
        return [...this.resume(run), ...textDelta(run, event.payload.delta)];
      case 'tool_executing': {
        const { tool_call_id: id, name } = event.payload;
        return [...this.resume(run), ...showCall(run, id, name, event.payload.arguments)];
      }
      case 'tool_completed': {
        const { tool_call_id: id, name, result } = event.payload;
        const out = [...this.resume(run), ...showCall(run, id, name, undefined)];
        // A client tool's result came from the client (is_error marks one the server gave: expired).
        if (run.clientCalls.has(id) && !event.payload.is_error && !this.options.echoInput) return out;
        out.push(aguiEvent('TOOL_CALL_RESULT', { messageId: resultMessageId(id), toolCallId: id, content: result, role: 'tool' }));
        return out;
      }
      case 'approval_requested': {
        const { tool_call_id: id, tool_name: name, expires_at: expiresAt } = event.payload;
        const out = [...this.resume(run), ...showCall(run, id, name, event.payload.arguments)];
        const interrupt = {
          id: interruptId(runId, id),
          reason: 'tool_approval',
          message: `The agent asks to run the tool ${name}.`,
          toolCallId: id,
          expiresAt,
          responseSchema: APPROVAL_ANSWER,
        };
        return [...out, ...this.pause(run, { type: 'interrupt', interrupts: [interrupt] })];
      }
      case 'client_tool_requested': {
        const { tool_call_id: id, tool_name: name } = event.payload;
        run.clientCalls.add(id);
        const out = [...this.resume(run), ...showCall(run, id, name, event.payload.arguments)];
        return [...out, ...this.pause(run, { type: 'success', pendingToolCallIds: [id] })];
      }
      case 'approval_resolved':
        return this.resume(run);
      case 'agent_completed':
        return this.complete(run, event.payload);
    }
  }

  /** Opens the run's AG-UI run if it is not open: its start, or its going on after a wait. */
  private resume(run: RunView): AguiEvent[] {
    if (run.phase === 'open') return [];
    const echo = run.phase === 'queued' && this.options.echoInput;
    run.phase = 'open';
    this.current = run;
    return [runStarted(this.threadId, run, echo)];
  }

  /** The AG-UI run ends while the stored run waits: for a person's answer or a client tool's result. */
  private pause(run: RunView, outcome: Outcome): AguiEvent[] {
    const out = closeText(run);
    out.push(aguiEvent('RUN_FINISHED', { threadId: this.threadId, runId: run.runId, outcome }));
    run.phase = 'paused';
    return this.ended(run, out);
  }

  private complete(run: RunView, payload: Completed): AguiEvent[] {
    const neverStarted = run.phase === 'queued';
    const out = neverStarted ? [runStarted(this.threadId, run, this.options.echoInput)] : [...this.resume(run), ...closeText(run)];
    const usage = tokenUsage(payload.usage);
    if (payload.status === 'failed') {
      const error = payload.error ?? { code: 'internal_error', message: 'The run failed.' };
      out.push(aguiEvent('RUN_ERROR', { message: error.message, code: error.code, ...usage }));
    } else {
      const outcome: Outcome = { type: payload.status === 'cancelled' ? 'cancelled' : 'success' };
      out.push(aguiEvent('RUN_FINISHED', { threadId: this.threadId, runId: run.runId, outcome, ...usage }));
    }
    this.runs.delete(run.runId);
    if (neverStarted && this.current && this.current !== run) {
      this.deferred.push(...out);
      return [];
    }
    return this.ended(run, out);
  }

  /** The open AG-UI run ended with `out`: never-started runs that ended meanwhile follow it. */
  private ended(run: RunView, out: AguiEvent[]): AguiEvent[] {
    if (this.current === run) this.current = undefined;
    if (this.current || this.deferred.length === 0) return out;
    const later = this.deferred;
    this.deferred = [];
    return [...out, ...later];
  }
}
