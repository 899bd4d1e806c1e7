import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth.js';

/**
 * Short-lived, single-use connection tickets: a browser trades its JWT (in a header) for a ticket
 * and puts only the ticket in the WebSocket URL, so a long-lived token never lands in URLs, proxy
 * logs or browser history.
 */
export interface TicketStore {
  /** Stores the principal under a new opaque ticket valid for `ttlMs`. */
  issue(principal: Principal, ttlMs: number): Promise<string>;
  /** The ticket's principal, once: a second redeem (or an expired ticket) gives undefined. */
  redeem(ticket: string): Promise<Principal | undefined>;
  close(): Promise<void>;
}

export function newTicket(): string {
  return `tk_${randomBytes(24).toString('base64url')}`;
}

export function encodePrincipal(principal: Principal): string {
  const { userId, workspaceId, roles } = principal;
  return JSON.stringify({ userId, workspaceId, roles, expiresAt: principal.expiresAt.toISOString() });
}

export function decodePrincipal(text: string): Principal {
  const value = JSON.parse(text) as Omit<Principal, 'expiresAt'> & { expiresAt: string };
  return { ...value, expiresAt: new Date(value.expiresAt) };
}
