/**
 * The seam where a proposed tool call can wait for someone: before each call of a step runs, the
 * turn asks the gate.
 *
 *   'run'        the call runs now (the default, when no gate is given).
 *   'stop'       the run parks: the assistant message with the step's tool calls is stored (the
 *                calls before this one have run and their results are stored), the run keeps its
 *                thread but no worker slot and no queue job, and this attempt ends. A later job for
 *                the run (a plain one, not a takeover: queue.enqueue({runId, threadId}, {key}))
 *                finds the parked run, reads the pending calls from the store and continues with
 *                this call, asking the gate again.
 *   {result}     the call does not run: `result` is its result (an error result, as a refused call
 *                is), and the model continues from it.
 *
 * A parked run is stored as running with no live attempt (db/turn-state.repository.ts), and no
 * event says so: clients see a turn that has not ended yet. A person's approval builds on this: its
 * gate stops a call that needs approval and has no answer stored, answers a denied or expired one
 * with {result}, and the park writes its own status and event.
 */
import type { Agent, ToolCallRecord } from '../../db/schema.js';

export interface ProposedCall {
  runId: string;
  threadId: string;
  agent: Agent;
  call: ToolCallRecord;
}

export type ToolVerdict = 'run' | 'stop' | { result: string };

export type ToolGate = (proposed: ProposedCall) => ToolVerdict | Promise<ToolVerdict>;
