import type { Logger } from 'pino';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory-broker.js';
import { RedisBroker } from './redis-broker.js';
import type { RedisConnections } from '../redis/connections.js';
import { metrics } from '../metrics/index.js';

export type { Broker } from './broker.js';
/** `log` hears of a subscriber's handler that threw (the message still reaches the others). */
export type BrokerOptions = ({ kind: 'memory' } | { kind: 'redis'; redis: RedisConnections }) & { log?: Logger };

export function createBroker(options: BrokerOptions): Broker {
  switch (options.kind) {
    case 'memory':
      return new MemoryBroker(options.log);
    case 'redis':
      return new RedisBroker(options.redis, options.log);
    default:
      throw new Error(`unknown broker kind ${(options as { kind: string }).kind}`);
  }
}

/** The channel a thread's events travel on. */
export const threadChannel = (threadId: string): string => `thread:${threadId}`;

/** The channel on which every worker listens for run ids to abort (cancel and interrupt). */
export const RUN_CANCEL_CHANNEL = 'runs:cancel';

/** Wire format of a thread event on the broker: `<seq>\n<frame json>`, so a gateway forwards without parsing JSON. */
export function encodeBrokerEvent(seq: number, frame: string): string {
  return `${seq}\n${frame}`;
}

/** First line of a message that carries several events of one thread. */
const BATCH = 'batch\n';

/**
 * Several events of one thread stored in one write, as one message: `batch\n<seq>\n<frame>\n<seq>\n<frame>...`.
 * A frame is JSON as JSON.stringify and Postgres write it, so it has no newline; one that had
 * would be sent on its own (undefined here). A gateway of an earlier version drops a batch as
 * malformed, so gateways are upgraded before workers (the README's upgrade notes).
 */
export function encodeBrokerEvents(events: readonly { seq: number; frame: string }[]): string | undefined {
  if (events.length === 1) return encodeBrokerEvent(events[0]!.seq, events[0]!.frame);
  if (events.some((event) => event.frame.includes('\n'))) return undefined;
  return BATCH + events.map((event) => encodeBrokerEvent(event.seq, event.frame)).join('\n');
}

/**
 * The thread was deleted: `deleted\n<thread_deleted frame>` on the thread's channel (no seq: the
 * thread's log is gone). Every gateway tells the thread's followers and lets them go.
 */
export function encodeThreadDeleted(threadId: string, timestamp: string): string {
  return `deleted\n${JSON.stringify({ type: 'thread_deleted', payload: { thread_id: threadId, timestamp } })}`;
}

export function isThreadDeletedMessage(message: string): boolean {
  return message.startsWith('deleted\n');
}

/** The frame of a message that `isThreadDeletedMessage`. */
export function threadDeletedFrame(message: string): string {
  return message.slice('deleted\n'.length);
}

/** The seq and frame of a thread event from the broker, or undefined when it is malformed. */
export function decodeBrokerEvent(message: string): { seq: number; frame: string } | undefined {
  const newline = message.indexOf('\n');
  const seq = Number(message.slice(0, newline));
  if (newline < 0 || !Number.isInteger(seq)) return undefined;
  return { seq, frame: message.slice(newline + 1) };
}

/**
 * The thread events of a broker message, one or a batch (see encodeBrokerEvents), in seq order;
 * undefined when it is malformed.
 */
export function decodeBrokerEvents(message: string): { seq: number; frame: string }[] | undefined {
  if (!message.startsWith(BATCH)) {
    const event = decodeBrokerEvent(message);
    return event && [event];
  }
  const events: { seq: number; frame: string }[] = [];
  for (let at = BATCH.length; at < message.length; ) {
    const newline = message.indexOf('\n', at);
    const seq = Number(message.slice(at, newline));
    if (newline < 0 || !Number.isInteger(seq)) return undefined;
    const end = message.indexOf('\n', newline + 1);
    events.push({ seq, frame: message.slice(newline + 1, end < 0 ? undefined : end) });
    at = end < 0 ? message.length : end + 1;
  }
  return events.length > 0 ? events : undefined;
}

/**
 * Publishes events of one thread already stored in the log, in seq order: one message for all of
 * them (encodeBrokerEvents), or one each when a frame cannot go in a batch. A failure is only
 * logged: the events are in the log, gateways fill gaps from it, and the broker publishes the
 * channel's latest failed message again once it reconnects.
 */
export async function publishStoredEvents(broker: Broker, threadId: string, events: readonly { seq: number; frame: string }[], log: Logger): Promise<void> {
  if (events.length === 0) return;
  const message = encodeBrokerEvents(events);
  if (message === undefined) {
    await Promise.all(events.map((event) => publishStoredEvents(broker, threadId, [event], log)));
    return;
  }
  await broker
    .publish(threadChannel(threadId), message)
    .then(() => metrics.eventsPublished(true, events.length))
    .catch((error) => {
      metrics.eventsPublished(false, events.length);
      log.warn({ err: error, thread_id: threadId, seq: events[0]!.seq, events: events.length }, 'events stored but not published');
    });
}
