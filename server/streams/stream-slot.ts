/**
 * A stream held open for a user (an SSE response following a turn) counts as one of the user's
 * connections (RATE_LIMIT_CONNECTIONS_PER_USER), as a socket and a waiting long-poll do: a client
 * cannot sidestep that limit by streaming instead of connecting.
 */
import { newId } from '../../db/ids.js';
import type { Owner } from '../../db/owner.js';
import type { GatewayServices } from '../handlers/context.js';

/** Takes a slot; resolves with its release (safe to call twice), or rejects with the refusal (`rate_limited`). */
export async function holdStreamSlot(services: GatewayServices, owner: Owner): Promise<() => void> {
  const slot = newId('c');
  // The slot store unreachable (Redis down): the stream goes on uncounted, as a long-poll does.
  const refusal = await services.rateLimits.acquireConnection(owner, slot).catch(() => undefined);
  if (refusal) throw refusal;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    services.rateLimits.releaseConnection(slot);
  };
}
