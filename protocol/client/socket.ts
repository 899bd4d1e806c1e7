/**
 * The WebSocket the client runs on: the browser's, or any implementation with the same shape
 * (Node: the `ws` package). Node's `ws` can also read a refused handshake's HTTP answer; a browser
 * cannot, which is why the client always offers `chat.v1` (the server then refuses after the
 * upgrade, with an error frame and a close code, see refusals.ts).
 */
import type { ErrorPayload } from '../frames.js';

/** A frame as it arrives, before anyone has looked at its type. */
export interface InboundFrame { type?: string; id?: string; payload?: Record<string, unknown> }

/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface HttpRefusal { status: number; body?: Partial<ErrorPayload> }

/** Node's `ws` shape: an EventEmitter that reports a refused handshake with its HTTP response. */
interface NodeWs {
  on(event: 'unexpected-response', listener: (req: unknown, res: NodeResponse) => void): void;
  terminate(): void;
}
interface NodeResponse {
  statusCode?: number;
  on(event: 'data', listener: (chunk: unknown) => void): void;
  on(event: 'end', listener: () => void): void;
}

/**
 * Opens a socket; `onRefused` gets a refused handshake's status and JSON body where the
 * implementation exposes them (then the socket ends as a drop, 1006).
 */
export function openSocket(
  Impl: WebSocketConstructor,
  url: string,
  protocols: string[],
  onRefused: (refusal: HttpRefusal) => void,
): WebSocketLike {
  const socket = new Impl(url, protocols);
  const node = socket as unknown as Partial<NodeWs>;
  if (typeof node.on === 'function' && typeof node.terminate === 'function') {
    node.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk) => {
        if (text.length < 4096) text += String(chunk);
      });
      res.on('end', () => {
        let body: Partial<ErrorPayload> | undefined;
        try {
          body = JSON.parse(text) as Partial<ErrorPayload>;
        } catch {
          body = undefined;
        }
        onRefused({ status: res.statusCode ?? 0, body });
        node.terminate!();
      });
    });
  }
  return socket;
}
