/**
 * The seam where a proposed tool call can wait for someone: before each call of a step runs, the
 * turn asks the gate (the worker's is approval-gate.ts).
 *
 *   'run'        the call runs now (the default, when no gate is given).
 *   {wait}       the run parks waiting for an answer: the assistant message with the step's tool
 *                calls is stored (the calls before this one have run and their results are
 *                stored), with the call's wait (db/tool-waits.repository.ts) and its request event
 *                (approval_requested or client_tool_requested), in one transaction. The run keeps
 *                its thread but no worker slot and no queue job, and this attempt ends. Once the
 *                wait is answered (or expires), a job resumes the run (enqueueResume): it reads the
 *                pending calls from the store and continues with this call, asking the gate again.
 *   'stop'       parks the same way with no wait and no event: a later job naming the run (a
 *                plain one, not a takeover: queue.enqueue({runId, threadId}, {key})) resumes it.
 *   {result}     the call does not run: `result` is its result (an error result, as a refused call
 *                is: tool_executing, then tool_completed with is_error), and the model continues.
 *   {refused}    the call does not run and never started (denied, or its approval expired): only
 *                tool_completed with is_error and this result, and the model continues from it.
 *
 * A parked run is stored as running with `waiting_since` set (db/turn-state.repository.ts): no
 * sweeper takes it over, and a resume job claims it only once none of its waits is pending.
 */
import type { Agent, ToolCallRecord, ToolWaitKind } from '../../db/schema.js';

export interface ProposedCall {
  runId: string;
  threadId: string;
  agent: Agent;
  call: ToolCallRecord;
  /** The call names a tool the client offered for this run (not one of the agent's). */
  clientTool: boolean;
}

/** A wait to park with: who answers, and when it expires unanswered. */
export interface WaitFor {
  kind: ToolWaitKind;
  /** Seconds until the wait expires. */
  timeoutS: number;
}

export type ToolVerdict = 'run' | 'stop' | { wait: WaitFor } | { result: string } | { refused: string };

export type ToolGate = (proposed: ProposedCall) => ToolVerdict | Promise<ToolVerdict>;
