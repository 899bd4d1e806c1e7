/**
 * Answers to a waiting run: the single entry point every protocol uses (the native `tool.approve`
 * frame and REST route, the AG-UI `resume`, the AI SDK's approval parts and tool results). A run
 * waits, holding no worker and no queue job, on one tool call at a time: an approval the thread's
 * owner gives, or a result the client sends for one of its own tools. The answer is stored with
 * its event in one transaction under the thread's lock (the first answer wins), published, and the
 * run's resume is queued; if that enqueue fails, the workers' sweep queues it later.
 */
import { findOwnedRun } from '../../db/runs.repository.js';
import type { Owner } from '../../db/owner.js';
import { answerToolWait as recordAnswer, type Resolved, type ToolAnswer } from '../../db/tool-wait-answers.repository.js';
import { pendingWaitsOf } from '../../db/tool-waits.repository.js';
import type { ToolWait } from '../../db/schema.js';
import type { PendingToolCall, ToolAnswerResult } from '../../protocol/results.js';
import { enqueueResume } from '../../queue/turn-queue.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';

export type { ToolAnswer };

export interface ToolWaitAnswer {
  run_id: string;
  tool_call_id: string;
  /** `{approved, reason?}` for an approval, `{result}` for a client tool's result. */
  answer: ToolAnswer;
}

/**
 * Records the owner's answer to the call the run waits on and queues the run's resume. Refused
 * with `not_found` when no such call waits on a run of this owner (a stranger's answer, a forged
 * or unknown id: never taken as an approval), `already_answered` when it was answered (or expired,
 * or cancelled) before, `invalid_request` when the answer is of the other kind.
 */
export async function answerToolWait(services: GatewayServices, owner: Owner, input: ToolWaitAnswer): Promise<ToolAnswerResult> {
  const { run_id, tool_call_id } = input;
  const outcome = await recordAnswer(services.db, owner, run_id, tool_call_id, input.answer);
  switch (outcome.kind) {
    case 'not_found':
      throw new RequestError('not_found', `Run ${run_id} is not waiting on tool call ${tool_call_id}.`);
    case 'mismatch':
      throw new RequestError(
        'invalid_request',
        outcome.waitKind === 'approval'
          ? `Tool call ${tool_call_id} waits for an approval (approved: true or false), not a result.`
          : `Tool call ${tool_call_id} waits for the client's result, not an approval.`,
      );
    case 'already_answered':
      throw new RequestError('already_answered', `Tool call ${tool_call_id} was already answered (${outcome.status}); the first answer stands.`);
    case 'expired':
      await settle(services, run_id, outcome);
      throw new RequestError('already_answered', `The request for tool call ${tool_call_id} expired before this answer; the model was told so.`);
    case 'answered':
      await settle(services, run_id, outcome);
      return { run_id, tool_call_id, status: outcome.status as ToolAnswerResult['status'] };
  }
}

/** The calls the run waits on (none unless it is waiting); not_found unless the run is the caller's. */
export async function pendingToolWaits(services: GatewayServices, owner: Owner, runId: string): Promise<PendingToolCall[]> {
  const run = await findOwnedRun(services.db, runId, owner);
  if (!run) throw new RequestError('not_found', `Run ${runId} was not found.`);
  return run.waiting_since ? (await pendingWaitsOf(services.db, runId)).map(pendingView) : [];
}

export function pendingView(wait: ToolWait): PendingToolCall {
  return {
    kind: wait.kind,
    tool_call_id: wait.tool_call_id,
    tool_name: wait.tool_name,
    arguments: wait.arguments,
    expires_at: new Date(wait.expires_at).toISOString(),
  };
}

/** Publishes what the resolution stored and queues the run's resume when it waits on nothing more. */
export async function settle(services: GatewayServices, runId: string, resolved: Resolved): Promise<void> {
  await services.events.publish(resolved.threadId, resolved.events);
  if (!resolved.resume) return;
  try {
    await enqueueResume(services.queue, { runId, threadId: resolved.threadId }, resolved.resume.attempt);
  } catch (error) {
    services.log.warn({ err: error, run_id: runId }, 'resume of an answered run not queued; the workers\' sweep will');
  }
}
