/**
 * The answer to one RunAgentInput over HTTP: the followed run's AG-UI run, from RUN_STARTED to its
 * RUN_FINISHED or RUN_ERROR (an interrupt or a pending client tool ends it too: the next input
 * goes on). The run is translated from its first event, so the state is whole; what the client
 * had already (the run before its answers) is dropped, and a client that only joins gets the
 * current AG-UI run of the turn from its start. The user message is not echoed: the client sent it.
 */
import { runEventsAfter } from '../../db/events.repository.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import { followRun } from '../streams/run-reader.js';
import { AguiView } from './agui.js';
import { aguiEvent, endsRun, isAgui, type AguiOut } from './agui-events.js';
import type { FollowedRun } from './agui-input.js';
import type { AguiSend, AguiStreamDeps } from './agui-thread-stream.js';

const PAGE = 500;

/** Streams the run's AG-UI run to `send`; resolves when it ended, the client left or `signal` aborted. */
export async function streamRun(deps: AguiStreamDeps, threadId: string, run: FollowedRun, send: AguiSend, signal: AbortSignal): Promise<void> {
  const view = new AguiView(threadId, { echoInput: false });
  // What the client has (or, joining, the current AG-UI run so far): the run's stored events up to `after`.
  let segment: AguiOut[] = [];
  for (let seq = run.firstSeq - 1; seq < run.after; ) {
    const page = await runEventsAfter(deps.db, threadId, run.runId, seq, PAGE);
    for (const stored of page) {
      if (stored.seq > run.after) break;
      for (const event of view.translate(JSON.parse(stored.frame) as ThreadEvent)) {
        if (isAgui(event, 'RUN_STARTED')) segment = [];
        segment.push(event);
      }
      seq = stored.seq;
    }
    if (page.length < PAGE) break;
  }
  if (run.join && segment.length > 0) {
    for (const event of segment) if (!(await send(event))) return;
    if (endsRun(segment.at(-1)!)) return;
  }
  let ended = false;
  const end = await followRun(deps, { threadId, runId: run.runId, afterSeq: run.after }, async (event) => {
    for (const out of view.translate(event)) {
      if (!(await send(out))) return false;
      if (endsRun(out)) {
        ended = true;
        return false;
      }
    }
    return true;
  }, signal);
  if (end === 'deleted' && !ended && !signal.aborted) {
    await send(aguiEvent('RUN_ERROR', { message: `The thread ${threadId} was deleted.`, code: 'thread_deleted' }));
  }
}

/** The answer when there is nothing to run: an empty AG-UI run under the client's run id. */
export function emptyRun(threadId: string, runId: string): AguiOut[] {
  return [
    aguiEvent('RUN_STARTED', { threadId, runId, protocolVersion: '1.0' }),
    aguiEvent('RUN_FINISHED', { threadId, runId, outcome: { type: 'success' } }),
  ];
}
