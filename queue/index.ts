import { BullmqTurnQueue } from './bullmq-turn-queue.js';
import { InlineTurnQueue } from './inline-turn-queue.js';
import type { TurnQueue } from './turn-queue.js';
import type { RedisConnections } from '../redis/connections.js';

export type { EnqueueOptions, TurnJob, TurnProcessor, TurnQueue, TurnContext } from './turn-queue.js';
export type TurnQueueOptions =
  | { kind: 'bullmq'; redis: RedisConnections; onError: (error: Error) => void; partitions?: number }
  | { kind: 'inline'; graceMs?: number };

export function createTurnQueue(options: TurnQueueOptions): TurnQueue {
  switch (options.kind) {
    case 'bullmq':
      return new BullmqTurnQueue(options.redis, options.onError, options.partitions);
    case 'inline':
      return new InlineTurnQueue({ graceMs: options.graceMs });
    default:
      throw new Error(`unknown queue kind ${(options as { kind: string }).kind}`);
  }
}
