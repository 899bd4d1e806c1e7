/**
 * One run's events, for a stream that follows a turn (the AI SDK's response, an AG-UI run): the
 * thread's events after a seq (./thread-reader.ts: stored, then live, in order, once each), only
 * those of the run, until its `agent_completed` has been delivered.
 */
import type { EventSink, ReadEnd, ThreadReaderDeps } from './thread-reader.js';
import { readThread } from './thread-reader.js';

export interface RunScope {
  threadId: string;
  runId: string;
  /** Events with a greater seq are delivered (ActiveTurn.afterSeq: the run from its start). */
  afterSeq: number;
}

/**
 * Why following ended: `ended` (its agent_completed was delivered), `stopped` (the sink said stop),
 * `aborted` (the signal), `deleted` (the thread was deleted).
 */
export type RunReadEnd = 'ended' | 'stopped' | Exclude<ReadEnd, 'done'>;

/**
 * Delivers the run's events after `scope.afterSeq` to `sink` (other runs' events on the thread are
 * skipped). A sink returning false stops it, as for readThread.
 */
export async function followRun(deps: ThreadReaderDeps, scope: RunScope, sink: EventSink, signal: AbortSignal): Promise<RunReadEnd> {
  let ended = false;
  const end = await readThread(deps, scope.threadId, scope.afterSeq, async (event) => {
    if (event.payload.run_id !== scope.runId) return true;
    const more = await sink(event);
    if (event.type === 'agent_completed') {
      ended = true;
      return false;
    }
    return more;
  }, signal);
  if (end !== 'done') return end;
  return ended ? 'ended' : 'stopped';
}
