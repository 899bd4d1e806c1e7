/**
 * The one mapping from a run's stored events to the AI SDK's UI message chunks (protocol/ai-sdk.ts),
 * for live and replayed events alike. A run is one assistant UI message whose id is the run's id
 * (stable across a wait, and across a takeover, which gives the stored answer a new message id).
 * Deterministic (text part ids count from the run's start): a stream that starts mid-run
 * translates from the run's first event and drops the chunks before its cut.
 *
 *   agent_started, agent_thinking   start-step (the first model step)
 *   message_delta                   text-start (if none is open), text-delta; text after tool results
 *                                   opens the next step
 *   tool_executing                  tool-input-available (unless sent already)
 *   tool_completed                  tool-output-available, or tool-output-error for an error result
 *   approval_requested              tool-input-available, tool-approval-request {approvalId, toolCallId}
 *   approval_resolved               denied: tool-output-denied; cancelled: tool-output-error;
 *                                   approved, expired: nothing (the tool_completed that follows says)
 *   client_tool_requested           tool-input-available (its result comes as tool_completed)
 *   agent_thinking {restarted}      a takeover: running calls end with an error, a new step (the
 *                                   text streamed before stays in its part)
 *   agent_completed                 text-end, finish-step, `error` for a failed run; the finish reason
 *
 * `start` and `finish` frame each response (a wait for an approval ends one). Steps that only
 * call tools share a UI step (the events mark a step's text, not its start).
 */
import type { AiSdkChunk, AiSdkFinishReason } from '../../protocol/ai-sdk.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import { approvalId } from './ai-sdk-approval-id.js';

/** The error of a call the run stopped without a result for. */
const ENDED_WITHOUT_RESULT = {
  restarted: 'The worker running this turn stopped; the turn was restarted.',
  cancelled: 'The run was cancelled before the tool finished.',
  failed: 'The run failed before the tool finished.',
  completed: 'The run ended before the tool finished.',
};

export const startChunk = (messageId: string): AiSdkChunk => ({ type: 'start', messageId });
export const finishChunk = (finishReason: AiSdkFinishReason): AiSdkChunk => ({ type: 'finish', finishReason });

/** Translates one run's events, in seq order, from its first. */
export class AiSdkRunView {
  private stepOpen = false;
  /** A tool result arrived in this step: the model's next text is its next step. */
  private stepHasResults = false;
  private openText: string | undefined;
  private texts = 0;
  /** Calls whose tool part exists (tool-input-available sent). */
  private readonly announced = new Set<string>();
  /** Calls whose part has its outcome (output, error or denial). */
  private readonly settled = new Set<string>();
  /** The call whose approval the run waits for, if the last event asked for one (read only). */
  waitingOn: string | undefined;
  /** How the run's response finishes, once its agent_completed was pushed (read only). */
  finishReason: AiSdkFinishReason | undefined;

  /** The UI message id is the run's id. */
  constructor(readonly runId: string, readonly messageId = runId) {}

  /** The chunks of the run's next event (none for its user message, or another run's event). */
  push(event: ThreadEvent): AiSdkChunk[] {
    if (event.payload.run_id !== this.runId || this.finishReason) return [];
    const out: AiSdkChunk[] = [];
    this.waitingOn = undefined;
    switch (event.type) {
      case 'agent_started':
        this.openStep(out);
        break;
      case 'agent_thinking':
        if (event.payload.restarted && this.stepOpen) {
          this.endCalls(out, ENDED_WITHOUT_RESULT.restarted);
          this.nextStep(out);
        } else this.openStep(out);
        break;
      case 'message_delta': {
        if (this.stepHasResults) this.nextStep(out);
        else this.openStep(out);
        if (this.openText === undefined) {
          this.openText = `text-${this.texts++}`;
          out.push({ type: 'text-start', id: this.openText });
        }
        out.push({ type: 'text-delta', id: this.openText, delta: event.payload.delta });
        break;
      }
      case 'tool_executing':
        this.announce(out, event.payload.tool_call_id, event.payload.name, event.payload.arguments);
        break;
      case 'approval_requested':
      case 'client_tool_requested':
        this.announce(out, event.payload.tool_call_id, event.payload.tool_name, event.payload.arguments);
        if (event.type === 'approval_requested') {
          out.push({ type: 'tool-approval-request', approvalId: approvalId(this.runId, event.payload.tool_call_id), toolCallId: event.payload.tool_call_id });
          this.waitingOn = event.payload.tool_call_id;
        }
        break;
      case 'approval_resolved': {
        const call = event.payload.tool_call_id;
        if (!this.announced.has(call) || this.settled.has(call)) break;
        if (event.payload.status === 'denied') {
          this.settled.add(call);
          out.push({ type: 'tool-output-denied', toolCallId: call });
        } else if (event.payload.status === 'cancelled') {
          this.settled.add(call);
          out.push({ type: 'tool-output-error', toolCallId: call, errorText: event.payload.reason ?? ENDED_WITHOUT_RESULT.cancelled });
        }
        break;
      }
      case 'tool_completed': {
        const call = event.payload.tool_call_id;
        if (this.settled.has(call)) break;
        // A result without a tool_executing or request still gets its part.
        this.announce(out, call, event.payload.name, null);
        this.settled.add(call);
        this.stepHasResults = true;
        out.push(event.payload.is_error
          ? { type: 'tool-output-error', toolCallId: call, errorText: event.payload.result }
          : { type: 'tool-output-available', toolCallId: call, output: event.payload.result });
        break;
      }
      case 'agent_completed': {
        const { status, error } = event.payload;
        this.closeText(out);
        this.endCalls(out, ENDED_WITHOUT_RESULT[status]);
        if (error) out.push({ type: 'error', errorText: error.message });
        if (this.stepOpen) out.push({ type: 'finish-step' });
        this.stepOpen = false;
        this.finishReason = status === 'completed' ? 'stop' : status === 'failed' ? 'error' : 'other';
        break;
      }
    }
    return out;
  }

  private openStep(out: AiSdkChunk[]): void {
    if (this.stepOpen) return;
    this.stepOpen = true;
    this.stepHasResults = false;
    out.push({ type: 'start-step' });
  }

  private nextStep(out: AiSdkChunk[]): void {
    this.closeText(out);
    if (this.stepOpen) out.push({ type: 'finish-step' });
    this.stepOpen = false;
    this.openStep(out);
  }

  private closeText(out: AiSdkChunk[]): void {
    if (this.openText === undefined) return;
    out.push({ type: 'text-end', id: this.openText });
    this.openText = undefined;
  }

  /** The call's tool part, once: text before it is closed. */
  private announce(out: AiSdkChunk[], toolCallId: string, toolName: string, input: unknown): void {
    this.openStep(out);
    this.closeText(out);
    if (this.announced.has(toolCallId)) return;
    this.announced.add(toolCallId);
    out.push({ type: 'tool-input-available', toolCallId, toolName, input });
  }

  /** Calls left without an outcome get an error outcome, so no part stays pending after the run. */
  private endCalls(out: AiSdkChunk[], errorText: string): void {
    this.closeText(out);
    for (const call of this.announced) {
      if (this.settled.has(call)) continue;
      this.settled.add(call);
      out.push({ type: 'tool-output-error', toolCallId: call, errorText });
    }
  }
}
