import type { Principal } from '../auth.js';
import { newTicket, type TicketStore } from './ticket-store.js';

/** Tickets of a single node (embedded mode). Expired ones are swept as new ones are issued. */
export class MemoryTicketStore implements TicketStore {
  private readonly tickets = new Map<string, { principal: Principal; expiresAt: number }>();

  async issue(principal: Principal, ttlMs: number): Promise<string> {
    const now = Date.now();
    for (const [ticket, entry] of this.tickets) if (entry.expiresAt <= now) this.tickets.delete(ticket);
    const ticket = newTicket();
    this.tickets.set(ticket, { principal, expiresAt: now + ttlMs });
    return ticket;
  }

  async redeem(ticket: string): Promise<Principal | undefined> {
    const entry = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return entry && entry.expiresAt > Date.now() ? entry.principal : undefined;
  }

  async close(): Promise<void> {
    this.tickets.clear();
  }
}
