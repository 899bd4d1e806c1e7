import type { Redis } from 'ioredis';
import { closeConnection, type RedisConnections } from '../../redis/connections.js';
import type { Principal } from '../auth.js';
import { decodePrincipal, encodePrincipal, newTicket, type TicketStore } from './ticket-store.js';

/** Tickets shared by every gateway: SET with an expiry, redeemed with GETDEL (atomic, once). */
export class RedisTicketStore implements TicketStore {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(connections: RedisConnections) {
    this.redis = connections.connect('commands');
    this.prefix = connections.prefix;
  }

  async issue(principal: Principal, ttlMs: number): Promise<string> {
    const ticket = newTicket();
    await this.redis.set(`${this.prefix}ticket:${ticket}`, encodePrincipal(principal), 'PX', ttlMs);
    return ticket;
  }

  async redeem(ticket: string): Promise<Principal | undefined> {
    const value = await this.redis.getdel(`${this.prefix}ticket:${ticket}`);
    return value ? decodePrincipal(value) : undefined;
  }

  async close(): Promise<void> {
    await closeConnection(this.redis);
  }
}
