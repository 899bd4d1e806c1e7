// `k6/websockets`: k6's browser-like WebSocket over the `ws` package. Params.headers go on the
// handshake; `ws_connecting`-style built-in metrics are not emitted (scripts here measure their own).
// k6 ignores the `protocols` argument and sends a `Sec-WebSocket-Protocol` header as it is given;
// `ws` must be told the subprotocols instead (it refuses an answer naming one it did not offer).
import WS from 'ws';
import { trackSocket, untrackSocket } from '../runtime.mjs';

const EVENTS = ['open', 'close', 'error', 'message', 'ping', 'pong'];

export class WebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url, protocols = null, params = {}) {
    this.url = url;
    this.binaryType = 'arraybuffer';
    this.listeners = new Map(EVENTS.map((name) => [name, []]));
    for (const name of EVENTS) this[`on${name}`] = null;
    const headers = { ...(params?.headers ?? {}) };
    const protocolHeader = Object.keys(headers).find((name) => name.toLowerCase() === 'sec-websocket-protocol');
    const offered = protocolHeader ? String(headers[protocolHeader]).split(',').map((p) => p.trim()).filter(Boolean) : [];
    if (protocolHeader) delete headers[protocolHeader];
    this.socket = new WS(url, offered, { headers });
    trackSocket(this);
    const now = () => Date.now();
    this.socket.on('open', () => this.dispatch('open', { type: 'open', timestamp: now() }));
    this.socket.on('message', (data, isBinary) => {
      const payload = isBinary ? new Uint8Array(data).buffer : String(data);
      this.dispatch('message', { type: 'message', data: payload, timestamp: now() });
    });
    this.socket.on('ping', () => this.dispatch('ping', { type: 'ping', timestamp: now() }));
    this.socket.on('pong', () => this.dispatch('pong', { type: 'pong', timestamp: now() }));
    this.socket.on('error', (error) => this.dispatch('error', { type: 'error', error: error.message, timestamp: now() }));
    this.socket.on('close', () => {
      this.dispatch('close', { type: 'close', timestamp: now() });
      untrackSocket(this);
    });
  }

  get readyState() {
    return this.socket.readyState;
  }

  get bufferedAmount() {
    return this.socket.bufferedAmount;
  }

  send(data) {
    this.socket.send(data);
  }

  ping() {
    this.socket.ping();
  }

  close(code, reason) {
    if (this.socket.readyState === WS.CONNECTING) this.socket.terminate();
    else this.socket.close(code, reason);
  }

  addEventListener(name, listener) {
    this.listeners.get(name)?.push(listener);
  }

  dispatch(name, event) {
    const handlers = [this[`on${name}`], ...(this.listeners.get(name) ?? [])].filter(Boolean);
    for (const handler of handlers) {
      try {
        handler(event);
      } catch (error) {
        // k6 reports an exception in a handler as a script error: so does the runner.
        process.emitWarning(`exception in a WebSocket ${name} handler: ${error?.stack ?? error}`);
        globalThis.__k6AdapterErrors = (globalThis.__k6AdapterErrors ?? 0) + 1;
      }
    }
  }
}

export default { WebSocket };
