import { MemoryTicketStore } from './memory-ticket-store.js';
import { RedisTicketStore } from './redis-ticket-store.js';
import type { TicketStore } from './ticket-store.js';
import type { RedisConnections } from '../../redis/connections.js';

export type { TicketStore } from './ticket-store.js';
export type TicketStoreOptions = { kind: 'memory' } | { kind: 'redis'; redis: RedisConnections };

/** How long a ticket is valid. */
export const TICKET_TTL_MS = 30_000;

export function createTicketStore(options: TicketStoreOptions): TicketStore {
  switch (options.kind) {
    case 'memory':
      return new MemoryTicketStore();
    case 'redis':
      return new RedisTicketStore(options.redis);
    default:
      throw new Error(`unknown ticket store kind ${(options as { kind: string }).kind}`);
  }
}
