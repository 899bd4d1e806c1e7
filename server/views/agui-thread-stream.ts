/**
 * A thread as one AG-UI event stream (the `agui.v1` socket): the view's events after a position,
 * stored then live, in order and once each, so that what a client had before a cut plus what this
 * sends equals the uninterrupted stream wherever the cut fell, between the parts of one stored
 * event too. Without a position the client first gets a prelude (./agui-prelude.ts).
 */
import type { ThreadEvent } from '../../protocol/frames.js';
import { readThread, type ReadEnd, type ThreadReaderDeps } from '../streams/thread-reader.js';
import { runEventsAfter } from '../../db/events.repository.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { AguiView } from './agui.js';
import { aguiEvent, isAfter, isAgui, type AguiOut } from './agui-events.js';
import { prelude } from './agui-prelude.js';
import { scanBack } from './agui-scan.js';

export interface AguiStreamDeps extends ThreadReaderDeps {
  db: Kysely<Database>;
}

/** Where a stream starts: after a position, or (none) with a prelude. */
export interface AguiStart {
  after?: { seq: number; part?: number };
  /** Sends nothing before this run's RUN_STARTED (an `agui.run` follows its own run). */
  untilRunStarts?: string;
}

/** Writes one event; false when the client is gone (the stream stops). */
export type AguiSend = (event: AguiOut) => Promise<boolean>;

/** Streams the thread to `send` from `start` until the client goes, `signal` aborts or the thread is deleted. */
export async function streamThread(deps: AguiStreamDeps, threadId: string, start: AguiStart, send: AguiSend, signal: AbortSignal): Promise<ReadEnd> {
  const view = new AguiView(threadId, { echoInput: true });
  let waiting = start.untilRunStarts;
  const out: AguiSend = async (event) => {
    if (waiting !== undefined) {
      if (!isAgui(event, 'RUN_STARTED') || event.runId !== waiting) return true;
      waiting = undefined;
    }
    return send(event);
  };
  /** Translates one stored event, first reading the run's user message if the view has not seen the run. */
  const feed = async (event: ThreadEvent): Promise<AguiOut[]> => {
    const runId = event.payload.run_id;
    if (runId && event.type !== 'message_created' && !view.knows(runId)) {
      const [first] = await runEventsAfter(deps.db, threadId, runId, 0, 1);
      if (first && first.seq < event.payload.seq) view.translate(JSON.parse(first.frame) as ThreadEvent);
    }
    return view.translate(event);
  };

  let from: number;
  if (start.after) {
    const { seq, part } = start.after;
    const scan = await scanBack(deps.db, threadId, seq);
    for (const event of scan.events) {
      for (const e of await feed(event)) if (isAfter(e.metadata, seq, part) && !(await out(e))) return 'done';
    }
    from = scan.last;
  } else {
    const begun = await prelude(deps.db, threadId, view);
    for (const e of begun.events) if (!(await out(e))) return 'done';
    from = begun.last;
  }
  const end = await readThread(deps, threadId, from, async (event) => {
    for (const e of await feed(event)) if (!(await out(e))) return false;
    return true;
  }, signal);
  if (end === 'deleted' && !signal.aborted) {
    // The thread and its log are gone: a run open on the stream ends here, with no seq (nothing stored).
    await send(aguiEvent('RUN_ERROR', { message: `The thread ${threadId} was deleted.`, code: 'thread_deleted' }));
  }
  return end;
}
