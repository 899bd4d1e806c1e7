/** What a person reads for each error code and connection state (the codes are in protocol/codes.ts). */
import type { ApprovalStatus, ConnectionStatus, StatusDetail } from '../protocol/client/index.js';

export function explain(code: string, message: string, retryAfterMs?: number): string {
  const inSeconds = retryAfterMs !== undefined ? ` Try again in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s.` : ' Try again in a moment.';
  switch (code) {
    case 'rate_limited': return `You are sending messages too quickly.${inSeconds}`;
    case 'thread_busy': return 'The assistant is still answering. Wait for it to finish, or press Stop.';
    case 'too_large': return 'That message is too long. Shorten it and send it again.';
    case 'invalid_frame': return `The message could not be sent: ${message}`;
    case 'unauthenticated': return 'You are signed out of the chat. Sign in again and reload the page.';
    case 'token_expired': return 'Your chat session expired. Reload the page to continue.';
    case 'token_unavailable': return `Could not sign in to the chat. ${message}`;
    case 'forbidden': return 'You do not have access to this conversation.';
    case 'not_found': return 'This conversation no longer exists.';
    case 'limit_exceeded': return 'Too many conversations are open at once. Reload the page.';
    case 'unavailable':
    case 'internal_error': return `The chat service is having trouble.${inSeconds}`;
    case 'request_timeout': return 'The server did not answer in time. Check your connection and try again.';
    case 'connection_lost': return 'The connection dropped before the server answered. Try again.';
    case 'client_closed': return 'The chat is disconnected.';
    default: return message || 'Something went wrong.';
  }
}

export function statusText(status: ConnectionStatus, detail: StatusDetail): string {
  switch (status) {
    case 'idle': return 'Not connected';
    case 'connecting': return 'Connecting…';
    case 'open': return 'Connected';
    case 'reconnecting': {
      const when = detail.delayMs && detail.delayMs >= 1000 ? ` in ${Math.round(detail.delayMs / 1000)} s` : '';
      // connect_failed: the socket never opened (its likely causes are in detail.message, for the host).
      return detail.code === 'connect_failed' ? `Cannot reach the chat server. Retrying${when}…` : `Reconnecting${when}…`;
    }
    case 'stopped': return 'Disconnected';
    case 'closed': return 'Disconnected';
  }
}

/** The decision on a tool call that asked for approval. */
export function decisionText(status: ApprovalStatus, reason?: string): string {
  switch (status) {
    case 'approved': return 'Approved';
    case 'denied': return reason ? `Denied: ${reason}` : 'Denied';
    case 'expired': return 'Expired';
    case 'cancelled': return 'Cancelled: the run was stopped';
  }
}

/** Why an answer to an approval request did not go through. */
export function approvalError(code: string, message: string, retryAfterMs?: number): string {
  switch (code) {
    case 'not_found': return 'This request no longer waits for an answer.';
    case 'connection_lost': return 'The connection dropped before the server answered: your answer may or may not have arrived.';
    default: return explain(code, message, retryAfterMs);
  }
}
