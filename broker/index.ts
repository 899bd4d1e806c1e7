import type { Broker } from './broker.js';
import { MemoryBroker } from './memory-broker.js';
import { RedisBroker } from './redis-broker.js';

export type { Broker } from './broker.js';
export type BrokerOptions = { kind: 'memory' } | { kind: 'redis'; url: string; prefix: string };

export function createBroker(options: BrokerOptions): Broker {
  switch (options.kind) {
    case 'memory':
      return new MemoryBroker();
    case 'redis':
      return new RedisBroker(options.url, options.prefix);
    default:
      throw new Error(`unknown broker kind ${(options as { kind: string }).kind}`);
  }
}

/** The channel a thread's events travel on. */
export const threadChannel = (threadId: string): string => `thread:${threadId}`;

/** The channel on which every worker listens for run ids to abort (cancel and interrupt). */
export const RUN_CANCEL_CHANNEL = 'runs:cancel';
