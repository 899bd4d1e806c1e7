/**
 * The prelude of a client joining a thread's AG-UI stream without a position: RUN_STARTED, a
 * MESSAGES_SNAPSHOT of the thread, and the run open on it from its start (its tool calls and text
 * so far, the interrupt it waits on), so that it passes verifyEvents and the live events follow on.
 * With no run open the prelude is a run of its own (RUN_STARTED, the snapshot, RUN_FINISHED).
 *
 * The snapshot is the view's events folded into messages (./agui-messages.ts), as the client would
 * have folded them: up to the open run's start, or the thread's end. Events of the prelude carry
 * `metadata.prelude`; the first to carry a seq is the first position a client can resume after
 * (a client cut before it joins again without one).
 */
import type { Kysely } from 'kysely';
import { listEventsAfter } from '../../db/event-reads.repository.js';
import type { Database } from '../../db/schema.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import type { AguiView } from './agui.js';
import { aguiEvent, type AguiOut } from './agui-events.js';
import { AguiMessages } from './agui-messages.js';
import { scanBack } from './agui-scan.js';

const PAGE = 1000;

/** The prelude's events, and the seq the live stream goes on after. */
export async function prelude(db: Kysely<Database>, threadId: string, view: AguiView): Promise<{ events: AguiOut[]; last: number }> {
  const scan = await scanBack(db, threadId, undefined);
  const openedAt = scan.open ? scan.openedAt : undefined;
  const upTo = openedAt ?? scan.last;
  const folded = new AguiMessages();
  let opening: AguiOut[] = [];
  for (let after = 0; after < upTo; ) {
    const page = await listEventsAfter(db, threadId, after, PAGE);
    if (page.length === 0) break;
    for (const stored of page) {
      if (stored.seq > upTo) break;
      opening = view.translate(JSON.parse(stored.frame) as ThreadEvent);
      for (const event of opening) folded.apply(event);
      after = stored.seq;
    }
  }
  const prelude = { prelude: true } as const;
  const snapshot = (meta: AguiOut['metadata']) => aguiEvent('MESSAGES_SNAPSHOT', { messages: folded.messages, metadata: meta });
  if (openedAt === undefined) {
    const runId = `prelude-${scan.last}`;
    return {
      last: scan.last,
      events: [
        aguiEvent('RUN_STARTED', { threadId, runId, protocolVersion: '1.0', metadata: prelude }),
        snapshot(prelude),
        aguiEvent('RUN_FINISHED', { threadId, runId, outcome: { type: 'success' }, metadata: { seq: scan.last, prelude: true } }),
      ],
    };
  }
  // The open run's RUN_STARTED (its agent_started's only event), without the input the snapshot holds.
  const started = opening.find((e) => e.type === ('RUN_STARTED' as AguiOut['type'])) as AguiOut & { input?: unknown };
  const { input: _input, ...run } = started;
  const events: AguiOut[] = [{ ...run, metadata: prelude } as AguiOut, snapshot({ seq: openedAt, prelude: true })];
  for (const event of scan.events.slice(1)) events.push(...view.translate(event));
  return { last: scan.last, events };
}
