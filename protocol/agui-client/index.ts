/**
 * `convo-gateway/agui`: an AG-UI agent over the gateway's WebSocket, with resume after a drop.
 * Needs `@ag-ui/client` and `rxjs` (peer dependencies); see docs/agui.md.
 */
export { WebSocketAgent, WebSocketAgentError, type SocketClass, type SocketLike, type WebSocketAgentConfig } from './websocket-agent.js';
