import type { ErrorCode } from '../../protocol/codes.js';
import { rateLimited } from '../rate-limits/index.js';
import type { OrderedInbox } from './ordered-inbox.js';

/** What every kind of socket (native, agui.v1) does with a frame it has parsed. */
interface Admitting {
  readonly inbox: OrderedInbox;
  sendError(id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number): boolean;
}

/**
 * A parsed frame joins the connection's ordered queue (`run` takes it when its turn comes); a
 * frame that failed to parse, or that finds `maxQueued` frames waiting, is refused with an error
 * frame and counts as a strike against the socket.
 */
export function admitFrame<C extends Admitting, F extends { id?: string }>(
  connection: C,
  parsed: { ok: true; frame: F } | { ok: false; id?: string; code: ErrorCode; message: string },
  run: (connection: C, frame: F) => Promise<void>,
  maxQueued: number,
  strike: (connection: C, reason: string) => void,
): void {
  if (!parsed.ok) {
    connection.sendError(parsed.id, parsed.code, parsed.message);
    strike(connection, 'too many invalid frames');
    return;
  }
  const frame = parsed.frame;
  if (!connection.inbox.enqueue(() => run(connection, frame), maxQueued)) {
    const refusal = rateLimited(`Too many frames waiting: at most ${maxQueued} queued on one connection; wait for answers before sending more`, 100);
    connection.sendError(frame.id, refusal.code, refusal.message, refusal.retryAfterMs);
    strike(connection, 'too many frames waiting');
  }
}
