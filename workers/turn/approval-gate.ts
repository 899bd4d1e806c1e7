/**
 * The worker's tool gate (tool-gate.ts): a call to a tool in the agent's `require_approval` runs
 * only once the thread's owner approved it, and a call to a tool the client offered for the run
 * waits for the client's result. Everything it decides from is stored (tool_waits), so whichever
 * worker resumes the run decides the same.
 *
 *   no wait stored      park waiting (approval, or client), expiring after approval_timeout_s
 *   pending             park again (the stored wait stands; no new request)
 *   approved            run the tool
 *   denied / expired    the call never runs: the model is told why and goes on
 *
 * A client tool's answer is stored as the call's result when it comes, so the resumed turn finds it
 * and never asks the gate.
 */
import type { Kysely } from 'kysely';
import type { Database, ToolWait } from '../../db/schema.js';
import { findToolWait } from '../../db/tool-waits.repository.js';
import type { ToolGate, ToolVerdict } from './tool-gate.js';

/** What the model is told about a call that did not run. */
export function refusal(wait: Pick<ToolWait, 'kind' | 'status' | 'reason'>): string {
  switch (wait.status) {
    case 'denied':
      return `The user denied this tool call; the tool did not run.${wait.reason ? ` Reason: ${wait.reason}` : ''}`;
    case 'expired':
      return wait.kind === 'approval'
        ? 'The approval request expired before anyone answered; the tool did not run.'
        : 'The client did not return a result in time; the tool did not run.';
    default:
      return 'The request was withdrawn; the tool did not run.';
  }
}

export function approvalGate(db: Kysely<Database>): ToolGate {
  return async ({ runId, agent, call, clientTool }): Promise<ToolVerdict> => {
    if (!clientTool && !agent.require_approval.includes(call.function.name)) return 'run';
    const waitFor = { kind: clientTool ? 'client' : 'approval', timeoutS: agent.approval_timeout_s } as const;
    const wait = await findToolWait(db, runId, call.id);
    if (!wait || wait.status === 'pending') return { wait: waitFor };
    if (wait.status === 'approved') return 'run';
    return { refused: refusal(wait) };
  };
}
