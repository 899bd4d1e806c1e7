/**
 * A refused handshake told after the upgrade, for a client that offered `chat.v1` (a browser's
 * WebSocket API cannot read a handshake response): one `error` frame, then a close whose code and
 * reason say what to do (see ./upgrade.ts). Such a socket has no Connection: this is its only
 * frame, written straight to the socket.
 */
import type { WebSocket } from 'uWebSockets.js';
import { CloseCodes, refusalReason, type ErrorCode } from '../../protocol/codes.js';
import { errorBody } from '../errors.js';
import { encodeFrame } from './frame-encode.js';

/** Why a handshake was refused, rendered as HTTP or as a close after the upgrade. */
export interface Refusal {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
}

/** The close code that carries a refusal to a client that cannot read HTTP answers. */
export function refusalCloseCode(code: ErrorCode): number {
  switch (code) {
    case 'unauthenticated':
    case 'token_expired':
      return CloseCodes.unauthenticated;
    case 'forbidden':
      return CloseCodes.forbidden;
    case 'unavailable':
      return CloseCodes.unavailable;
    default:
      return CloseCodes.policy;
  }
}

/** Says why on the freshly opened socket, then closes it with the refusal's code. */
export function sendRefusal(ws: WebSocket<unknown>, refusal: Refusal): void {
  ws.send(encodeFrame('error', errorBody(refusal.code, refusal.message, refusal.retryAfterMs)), false);
  ws.end(refusalCloseCode(refusal.code), refusalReason(refusal.code, refusal.retryAfterMs));
}
