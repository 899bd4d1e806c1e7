/**
 * `convo-gateway/client`: the typed client of the v1 wire protocol, for browsers and Node. It
 * imports nothing at run time but protocol/codes.ts (no validator, nothing Node-only).
 */
export { ConversationClient } from './conversation-client.js';
export { newClientMessageId } from './outbox.js';
export type {
  ClientEvents, ConnectionStatus, ConversationClientOptions, OutboxEntry, Refusal, SendOptions, StatusDetail, TokenProvider,
} from './types.js';
export { ConversationError, type ClientErrorCode } from './errors.js';
export { SUBPROTOCOL_TOKEN_LIMIT, socketUrl } from './handshake.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { judge, type SocketEnd, type Verdict } from './refusals.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { emptyThread } from './thread-state.js';
export { applyEvent, prependEvents } from './thread-fold.js';
export type { ChatMessage, PendingCall, RunView, ThreadState, ToolActivity } from './thread-state.js';
export { CloseCodes, ErrorCodes, PROTOCOL } from '../codes.js';
export type { ErrorCode, RunErrorCode } from '../codes.js';
export type * from '../frames.js';
export type * from '../results.js';
