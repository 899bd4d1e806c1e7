import { decodeBrokerEvents, threadChannel } from '../../broker/index.js';
import { findOwnedThread } from '../../db/threads.repository.js';
import { listEventPayloadsAfter } from '../../db/event-reads.repository.js';
import type { Owner } from '../../db/owner.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';
import { newId } from '../../db/ids.js';

/** Longest a long-poll may wait; clients loop. */
export const MAX_WAIT_MS = 30_000;

/**
 * Events with seq > after_seq. Returns at once when there are some; otherwise waits up to wait_ms
 * for the next one (listening on the thread's channel before reading the log, so an event stored
 * in between is not missed), then returns what the log holds. For clients without WebSockets.
 */
export async function pollEvents(
  services: GatewayServices,
  owner: Owner,
  input: { thread_id: string; after_seq: number; wait_ms: number; limit?: number },
  signal: AbortSignal,
) {
  const thread = await services.rateLimits.withRequestSlot(owner, () => findOwnedThread(services.db, input.thread_id, owner));
  if (!thread) throw new RequestError('not_found', `Thread ${input.thread_id} was not found.`);
  // A waiting long-poll holds one of the user's socket slots (RATE_LIMIT_CONNECTIONS_PER_USER):
  // a client cannot sidestep that limit by polling instead of connecting.
  const slot = input.wait_ms > 0 ? newId('lp') : undefined;
  if (slot) {
    const refusal = await services.rateLimits.acquireConnection(owner, slot).catch(() => undefined);
    if (refusal) throw refusal;
  }
  try {
    return await poll(services, { ...input, owner, lastSeq: thread.last_seq }, signal);
  } finally {
    if (slot) services.rateLimits.releaseConnection(slot);
  }
}

async function poll(
  services: GatewayServices,
  input: { thread_id: string; after_seq: number; wait_ms: number; limit?: number; owner: Owner; lastSeq: number },
  signal: AbortSignal,
) {
  const limit = input.limit ?? 500;
  /**
   * A read replica answers when its copy of the thread reaches `stored` (db/read-routing.ts): a
   * seq known to be stored, read after the channel was subscribed to (else an event stored in
   * between could be missing from the replica's copy, and the poll would wait on it).
   */
  const read = (stored: () => Promise<number | undefined> | number | undefined) => services.rateLimits.withRequestSlot(input.owner, () =>
    services.routing.bySeq('poll', {
      need: async () => {
        const seq = await stored();
        return seq === undefined ? undefined : Math.max(seq, input.after_seq);
      },
      read: (db) => listEventPayloadsAfter(db, input.thread_id, input.after_seq, limit),
    }));
  /** The highest seq published on the thread's channel while this poll listened. */
  let published: number | undefined;
  let wake!: () => void;
  const arrived = new Promise<void>((resolve) => (wake = resolve));
  const unsubscribe = input.wait_ms > 0
    ? await services.broker.subscribe(threadChannel(input.thread_id), (message) => {
      const seq = decodeBrokerEvents(message)?.at(-1)?.seq;
      if (seq !== undefined) published = Math.max(published ?? 0, seq);
      wake();
    })
    : undefined;
  try {
    // Without a wait there is no subscription: the owner check, read after the request came, says what is stored.
    let events = await read(unsubscribe ? () => services.reads.lastSeq(input.thread_id) : () => input.lastSeq);
    if (events.length === 0 && input.wait_ms > 0 && !signal.aborted) {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => wake();
      signal.addEventListener('abort', onAbort, { once: true });
      await Promise.race([arrived, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(input.wait_ms, MAX_WAIT_MS))))]);
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (!signal.aborted) events = await read(() => published ?? services.reads.lastSeq(input.thread_id));
    }
    const last = events.length > 0 ? (events[events.length - 1]!.payload.seq as number) : input.after_seq;
    return { thread_id: input.thread_id, events, last_seq: Math.max(last, input.after_seq) };
  } finally {
    await unsubscribe?.();
  }
}
