/**
 * What the gateway's route handlers may use, handed to the router once (server/gateway.ts).
 */
import type { GatewayServices } from '../handlers/context.js';
import { route as declare } from '../http/route.js';
import type { Principal } from '../auth.js';

export interface RouteDeps {
  services: GatewayServices;
  /** Resolves when the node's dependencies (database, broker, queue) answer; rejects with why not. */
  checkReady: () => Promise<void>;
  /** Signs development tokens for GET /dev/token; only in embedded development mode. */
  devToken?: { secret: string; workspaceClaim: string; issuer?: string; audience?: string };
  /** The documents of what this node serves, built once. */
  documents: { openapi: () => object; asyncapi: (host: string) => object };
}

/** Declares one of the gateway's routes (handlers get RouteDeps). */
export const route = declare<RouteDeps>();

/** The caller as the owner of threads and runs. */
export function owner(principal: Principal): { workspaceId: string; userId: string } {
  return { workspaceId: principal.workspaceId, userId: principal.userId };
}
