/**
 * A job's first step: claim its run for a new attempt, in one round trip that also stores the
 * turn's opening events and reads its context (claim_run); or, for a run parked before a tool
 * call, claim it back with the stored state the turn goes on from. A job that claims nothing
 * leaves the run to whoever holds it (wake-next.ts handles what is left to do).
 */
import { claimRun } from '../../db/runs.repository.js';
import type { StoredEvent, WriteFence } from '../../db/events.repository.js';
import type { Agent, ClientToolDef, Message } from '../../db/schema.js';
import { claimParkedRun, isWaiting, type TurnUsage } from '../../db/turn-state.repository.js';
import type { TurnContext, TurnJob } from '../../queue/turn-queue.js';
import type { TurnDeps } from './deps.js';
import { afterUnclaimed } from './wake-next.js';

/** Where an attempt of a turn starts: everything its claim read from the store. */
export interface TurnStart {
  runId: string;
  threadId: string;
  agent: Agent;
  fence: WriteFence;
  /** The assistant message the answer streams into. */
  messageId: string;
  /** This attempt took the run over from one that died (the answer restarts under a new message id). */
  restarted: boolean;
  /** The thread's last seq when the run was claimed (before its opening events). */
  afterSeq: number;
  /** The opening events the claim stored (agent_started and agent_thinking, or the restart's agent_thinking). */
  opened: StoredEvent[];
  /** The thread's messages as the claim read them, oldest first: the context. */
  messages: Message[];
  /** Tools the client offered for this run (runs.client_tools): offered to the model beside the agent's. */
  clientTools: ClientToolDef[];
  /** A parked run resumed: the answer's text and the model's usage so far (its pending calls are in `messages`). */
  resumed?: { text: string; usage: TurnUsage };
}

/** The run's claim for this job, or undefined when the job has nothing to run. */
export async function claimTurn(deps: TurnDeps, job: TurnJob, ctx: TurnContext): Promise<TurnStart | undefined> {
  // A re-delivery of the job that parked the run (its worker died just after the park) may not
  // know the attempt it claimed: it would take over any running run, so it never takes over a
  // waiting one (which only its resume continues).
  const takeover = (ctx.takeover || job.takeover !== undefined) && !(await isWaiting(deps.db, job.runId));
  const claim = await claimRun(deps.db, job.runId, {
    takeover,
    fromAttempt: job.takeover?.fromAttempt,
    // A re-delivered job replaces the attempt its earlier delivery claimed, never a newer one.
    job: ctx.jobId,
    fromJob: ctx.takeover ? ctx.jobId : undefined,
    staleMs: job.takeover?.staleMs,
    // The claim also stores the opening events and reads the context: one round trip.
    start: true,
  });
  if (claim.kind === 'claimed') {
    return {
      runId: claim.run.id,
      threadId: claim.thread.id,
      agent: claim.agent,
      fence: claim.fence,
      messageId: claim.run.assistant_message_id!,
      restarted: claim.restarted,
      afterSeq: claim.thread.last_seq,
      opened: claim.opened ?? [],
      messages: claim.messages ?? [],
      clientTools: claim.run.client_tools ?? [],
    };
  }
  // A running run may be parked: a plain job naming it resumes it (a takeover job never does, so a
  // late takeover of the attempt that parked it cannot).
  if (claim.kind === 'gone' && claim.status === 'running' && !takeover) {
    const parked = await claimParkedRun(deps.db, job.runId, ctx.jobId);
    if (parked) {
      return {
        runId: parked.run.id,
        threadId: parked.thread.id,
        agent: parked.agent,
        fence: parked.fence,
        messageId: parked.run.assistant_message_id!,
        restarted: false,
        afterSeq: parked.thread.last_seq,
        opened: [],
        messages: parked.messages,
        clientTools: parked.run.client_tools ?? [],
        resumed: { text: parked.text, usage: parked.usage },
      };
    }
  }
  deps.log.debug({ run_id: job.runId, claim: claim.kind }, 'run not started');
  await afterUnclaimed(deps, job, ctx, claim);
  return undefined;
}
