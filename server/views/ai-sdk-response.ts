/**
 * One AI SDK response (`text/event-stream`): a run's events followed from its start (stored, then
 * live), translated by ./ai-sdk.ts, written as `data: <chunk>` lines between a `start` and a
 * `finish`, then `data: [DONE]`. It ends when the run ends, or when the run waits for an approval
 * that is still unanswered (the answer comes in the next request, whose response goes on in the
 * same assistant message). A client that leaves ends only the response, never the run.
 */
import type { Logger } from 'pino';
import { AI_SDK_DONE, type AiSdkChunk } from '../../protocol/ai-sdk.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import type { EventWriter } from '../http/route.js';
import { followRun, type RunScope } from '../streams/run-reader.js';
import type { ThreadReaderDeps } from '../streams/thread-reader.js';
import { AiSdkRunView, finishChunk, startChunk } from './ai-sdk.js';

/** A comment line this often keeps proxies from closing a quiet stream (a queued turn, a slow tool). */
export const KEEP_ALIVE_MS = 15_000;

export interface RunResponse {
  /** The run, from its start (ActiveTurn.afterSeq). */
  scope: RunScope;
  /**
   * The client already has what the run's events up to and including the one this accepts gave
   * (an assistant message continued after its approval request): their chunks are not sent.
   * Absent: everything is sent, from the run's start.
   */
  continueAfter?: (event: ThreadEvent) => boolean;
  /** Whether the call's approval is still unanswered; the response ends there when it is. */
  stillWaiting: (runId: string, toolCallId: string) => Promise<boolean>;
}

/** Writes the response; resolves when it has ended or the client has left. */
export async function writeRunResponse(deps: ThreadReaderDeps & { log: Logger }, response: RunResponse, sse: EventWriter): Promise<void> {
  const view = new AiSdkRunView(response.scope.runId);
  const send = (chunk: AiSdkChunk) => sse.send({ data: chunk });
  let sending = response.continueAfter === undefined;
  let waits = false;
  if (!(await send(startChunk(view.messageId)))) return;
  const keepAlive = setInterval(() => void sse.comment('keep-alive'), KEEP_ALIVE_MS);
  try {
    const end = await followRun(deps, response.scope, async (event) => {
      const chunks = view.push(event);
      if (!sending) {
        sending = response.continueAfter!(event);
        return true;
      }
      for (const chunk of chunks) if (!(await send(chunk))) return false;
      if (view.waitingOn !== undefined && (await response.stillWaiting(view.runId, view.waitingOn))) {
        waits = true;
        return false;
      }
      return true;
    }, sse.signal);
    if (sse.closed) return;
    if (end === 'ended') await send(finishChunk(view.finishReason ?? 'other'));
    else if (waits) await send(finishChunk('tool-calls'));
    else if (end === 'deleted') {
      await send({ type: 'error', errorText: 'The chat was deleted.' });
      await send(finishChunk('error'));
    } else return;
    await sse.send({ data: AI_SDK_DONE });
  } catch (error) {
    deps.log.warn({ err: error, run_id: response.scope.runId }, 'AI SDK stream failed; the client may resume it');
    await send({ type: 'error', errorText: 'The stream failed; resume it to continue.' });
  } finally {
    clearInterval(keepAlive);
  }
}
