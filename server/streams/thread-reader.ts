/**
 * A thread's events for a stream that is not a native socket (an SSE response, a socket speaking
 * another protocol): the stored events after a seq, then the live ones as they are published, in
 * seq order, each once. A native socket follows through the fan-out's topic (../fanout/); a
 * stream that translates every event into another protocol reads here, one reader per stream.
 *
 * It subscribes to the thread's channel before it reads the log, so nothing published in between
 * is missed; what arrives live is held until the log has been read up to it. A live event past a
 * gap (a publish lost, a broker blip) and a broker reconnect are filled from the log, as the
 * fan-out does: the log is the truth, the broker only says when to look.
 */
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import { decodeBrokerEvents, isThreadDeletedMessage, threadChannel } from '../../broker/index.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import type { BatchedReads } from '../batched-reads.js';

export interface ThreadReaderDeps {
  broker: Broker;
  reads: BatchedReads;
  log: Logger;
}

/** Why reading ended. */
export type ReadEnd = 'done' | 'aborted' | 'deleted';

/**
 * The consumer of one event: false (or a promise of false) stops the reader, e.g. once the run it
 * follows has ended. The reader waits for a returned promise before the next event, so a consumer
 * that writes to a slow client slows the reader, not the other way round.
 */
export type EventSink = (event: ThreadEvent) => boolean | void | Promise<boolean | void>;

/**
 * Delivers the thread's events with seq > `afterSeq` to `sink` until the sink says stop, `signal`
 * aborts, or the thread is deleted. Resolves with why it ended; a failing read of the log is retried
 * (the database may be restarting), never skipped.
 */
export async function readThread(deps: ThreadReaderDeps, threadId: string, afterSeq: number, sink: EventSink, signal: AbortSignal): Promise<ReadEnd> {
  if (signal.aborted) return 'aborted';
  let lastSeq = afterSeq;
  /** Live events held until the log has been read up to them. */
  const held: Array<{ seq: number; frame: string }> = [];
  let deleted = false;
  /** The log must be read (first, after a gap, after a reconnect) before held events go out. */
  let readLog = true;
  /**
   * How far the log is known to reach (a read replica must have it: ../batched-reads.ts): the
   * newest seq read or held past a gap. The first read and the first after a reconnect check with
   * the thread's last_seq on the primary instead (what was published unheard is stored up to there).
   */
  let stored = 0;
  let askPrimary = true;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  const unsubscribe = await deps.broker.subscribe(threadChannel(threadId), (message) => {
    if (isThreadDeletedMessage(message)) deleted = true;
    else {
      const events = decodeBrokerEvents(message);
      if (events) held.push(...events);
    }
    poke();
  });
  const stopReconnect = deps.broker.onReconnect(() => {
    readLog = true;
    askPrimary = true;
    poke();
  });
  signal.addEventListener('abort', poke, { once: true });

  let done = false;
  const deliver = async (seq: number, frame: string): Promise<void> => {
    if (seq <= lastSeq || done) return;
    lastSeq = seq;
    if ((await sink(JSON.parse(frame) as ThreadEvent)) === false) done = true;
  };
  /** One page of the log after lastSeq; a failed read is retried until it succeeds or the reader is aborted. */
  const readPage = async () => {
    for (let failures = 0; ; failures++) {
      const primary = askPrimary;
      askPrimary = false;
      try {
        const page = await deps.reads.eventsAfter(threadId, lastSeq, primary ? undefined : stored);
        stored = Math.max(stored, page.lastSeq);
        return page;
      } catch (error) {
        askPrimary ||= primary;
        if (signal.aborted) return undefined;
        deps.log.warn({ err: error, thread_id: threadId }, 'reading a thread for a stream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** Math.min(failures, 5))));
      }
    }
  };
  try {
    for (;;) {
      if (signal.aborted) return 'aborted';
      if (done) return 'done';
      if (readLog) {
        readLog = false;
        for (;;) {
          const page = await readPage();
          if (!page) return 'aborted';
          if (!page.threadExists) return 'deleted';
          for (const event of page.events) await deliver(event.seq, event.frame);
          if (done || page.events.length < deps.reads.pageSize) break;
        }
        continue;
      }
      held.sort((a, b) => a.seq - b.seq);
      while (held.length > 0 && !done) {
        const next = held[0]!;
        if (next.seq > lastSeq + 1) {
          // A gap: what is missing is in the log (stored before it was published).
          readLog = true;
          stored = Math.max(stored, next.seq - 1);
          break;
        }
        held.shift();
        await deliver(next.seq, next.frame);
      }
      if (readLog || done) continue;
      if (deleted) return 'deleted';
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stopReconnect();
    signal.removeEventListener('abort', poke);
    await unsubscribe().catch(() => {});
  }
}
