/**
 * A run driven by hand, as a worker would drive it: a user's turn recorded and claimed through the
 * real repository code, so a test can write the run's events itself (the event-log and delta tests).
 */
import type { WriteFence } from '../../db/events.repository.js';
import { claimRun } from '../../db/runs.repository.js';
import { recordTurn } from '../../db/turns.repository.js';
import type { StackCtx } from './fixture.js';

export interface HandRun {
  threadId: string;
  runId: string;
  messageId: string;
  fence: WriteFence;
  /** The thread's last seq when the run was claimed (its message_created). */
  afterSeq: number;
}

/** A turn of `user` recorded (on `threadId`, or a new thread) and claimed: the run is the caller's to write. */
export async function startHandRun(ctx: StackCtx, user: string, threadId?: string): Promise<HandRun> {
  const turn = await recordTurn(ctx.node.db, { workspaceId: 'acme', userId: user }, { content: `Hello from ${user}`, threadId });
  const claim = await claimRun(ctx.node.db, turn.runId);
  if (claim.kind !== 'claimed') throw new Error(`run ${turn.runId} not claimed: ${claim.kind}`);
  return { threadId: turn.threadId, runId: turn.runId, messageId: claim.run.assistant_message_id!, fence: claim.fence, afterSeq: claim.thread.last_seq };
}
