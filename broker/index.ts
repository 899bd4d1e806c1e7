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
 * Publishes an event already stored in the log on its thread's channel. A failure is only logged:
 * the event is in the log, gateways fill gaps from it, and the broker publishes the channel's
 * latest failed message again once it reconnects.
 */
export async function publishStoredEvent(broker: Broker, threadId: string, event: { seq: number; frame: string }, log: Logger): Promise<void> {
  await broker
    .publish(threadChannel(threadId), encodeBrokerEvent(event.seq, event.frame))
    .then(() => metrics.eventPublished(true))
    .catch((error) => {
      metrics.eventPublished(false);
      log.warn({ err: error, thread_id: threadId, seq: event.seq }, 'event stored but not published');
    });
}
