/**
 * An AG-UI agent (`AbstractAgent` of @ag-ui/client) over the gateway's WebSocket, subprotocol
 * `agui.v1` (docs/agui.md): `runAgent()` sends `agui.run` and yields the run's events; a socket that
 * drops mid-run is opened again and continued with `agui.connect` from the last event's seq and part,
 * so the run's events arrive once each, in order, as if nothing happened. `connectAgent()` joins the
 * thread as it is (a prelude: RUN_STARTED, a MESSAGES_SNAPSHOT, the open run).
 *
 * The token goes as a `bearer.<jwt>` subprotocol entry (browsers cannot set headers on a socket); a
 * function is asked again for every connection, so an expired token (close 4001) is replaced.
 */
import { AbstractAgent, type AgentConfig } from '@ag-ui/client';
import type { BaseEvent, Message, RunAgentInput } from '@ag-ui/core';
import { Observable } from 'rxjs';

/** What the agent needs of a WebSocket: the browser's API, which `ws` also offers. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type SocketClass = new (url: string, protocols: string[]) => SocketLike;

export interface WebSocketAgentConfig extends AgentConfig {
  /** The gateway's socket, `wss://host/v1/ws` (an `https://` URL is read as `wss://`). */
  url: string;
  /** The JWT, or a function giving one (asked for every connection). */
  token: string | (() => string | Promise<string>);
  /** Connections tried after a drop before the run fails. @defaultValue 5 */
  maxReconnects?: number;
  /** The WebSocket class (in Node before 22, `WebSocket` of the `ws` package). @defaultValue globalThis.WebSocket */
  WebSocket?: SocketClass;
}

/** A failure the server reported: its `error` frame's code, or the socket's close code. */
export class WebSocketAgentError extends Error {
  constructor(message: string, readonly code: string | number) {
    super(message);
    this.name = 'WebSocketAgentError';
  }
}

/** Close codes after which connecting again cannot help: too large, forbidden, policy. */
const FINAL_CLOSES = new Set([1008, 1009, 4003, 4008]);

export class WebSocketAgent extends AbstractAgent {
  readonly url: string;
  private readonly settings: WebSocketAgentConfig;

  constructor(config: WebSocketAgentConfig) {
    super(config);
    this.settings = config;
    this.url = config.url.replace(/^http/, 'ws');
  }

  run(input: RunAgentInput): Observable<BaseEvent> {
    const payload = { ...input, messages: newMessages(input.messages) };
    const answered = new Set(payload.messages.flatMap((m) => (m.role === 'tool' ? [m.toolCallId] : [])));
    return this.stream({ type: 'agui.run', payload }, input.threadId, (event) => {
      // The client has what it sent: its user message (echoed as RUN_STARTED.input) and its tool results.
      if (event.type === 'RUN_STARTED') {
        const { input: _echo, ...started } = event as BaseEvent & { input?: unknown };
        return started as BaseEvent;
      }
      if (event.type === 'TOOL_CALL_RESULT' && answered.has((event as BaseEvent & { toolCallId: string }).toolCallId)) return undefined;
      return event;
    });
  }

  protected override connect(input: RunAgentInput): Observable<BaseEvent> {
    return this.stream({ type: 'agui.connect', payload: { thread_id: input.threadId } }, input.threadId, (event) => event);
  }

  override clone(): WebSocketAgent {
    const copy = super.clone() as WebSocketAgent;
    Object.assign(copy, { url: this.url, settings: this.settings });
    return copy;
  }

  /** One run's events: `first` sent on the first connection, agui.connect from the last position on the next. */
  private stream(first: { type: string; payload: unknown }, threadId: string, keep: (event: BaseEvent) => BaseEvent | undefined): Observable<BaseEvent> {
    const settings = this.settings;
    const Socket = settings.WebSocket ?? (globalThis as unknown as { WebSocket: SocketClass }).WebSocket;
    return new Observable<BaseEvent>((subscriber) => {
      let socket: SocketLike | undefined;
      let position: { after_seq: number; after_part?: number } | undefined;
      /** Prelude events before the first one with a position: sent with it, dropped if the socket drops first. */
      let held: BaseEvent[] = [];
      let started = false;
      let done = false;
      let failures = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;

      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket?.close(1000);
        if (error) subscriber.error(error);
        else subscriber.complete();
      };
      const emit = (event: BaseEvent) => {
        const kept = keep(event);
        if (kept) subscriber.next(kept);
        if (event.type === 'RUN_STARTED') started = true;
        else if (started && (event.type === 'RUN_FINISHED' || event.type === 'RUN_ERROR')) finish();
      };
      const receive = (frame: BaseEvent & { payload?: { code: string; message: string } }) => {
        if ((frame.type as string) === 'error' && frame.payload) {
          finish(new WebSocketAgentError(`${frame.payload.code}: ${frame.payload.message}`, frame.payload.code));
          return;
        }
        failures = 0;
        const meta = frame.metadata as { seq?: number; part?: number } | undefined;
        // No seq: a prelude's opening (or a deleted thread's RUN_ERROR, which ends the stream).
        if (meta?.seq === undefined && frame.type !== 'RUN_ERROR') {
          held.push(frame);
          return;
        }
        if (meta?.seq !== undefined) position = { after_seq: meta.seq, ...(meta.part === undefined ? {} : { after_part: meta.part }) };
        for (const event of held.splice(0)) emit(event);
        emit(frame);
      };
      const open = async () => {
        if (done) return;
        const token = typeof settings.token === 'function' ? await settings.token() : settings.token;
        if (done) return;
        const frame = position ? { type: 'agui.connect', payload: { thread_id: threadId, ...position } } : first;
        held = [];
        const current = (socket = new Socket(this.url, ['agui.v1', `bearer.${token}`]));
        current.onopen = () => current.send(JSON.stringify(frame));
        current.onmessage = (message) => receive(JSON.parse(String(message.data)));
        current.onerror = () => {};
        current.onclose = (event) => {
          if (done || current !== socket) return;
          if (FINAL_CLOSES.has(event.code) || ++failures > (settings.maxReconnects ?? 5)) {
            finish(new WebSocketAgentError(`The socket closed (${event.code} ${event.reason}).`, event.code));
            return;
          }
          timer = setTimeout(() => void open().catch((error: Error) => finish(error)), Math.min(5_000, 250 * 2 ** (failures - 1)));
        };
      };
      open().catch((error: Error) => finish(error));
      return () => {
        done = true;
        clearTimeout(timer);
        socket?.close(1000);
      };
    });
  }
}

/**
 * What the server reads of the messages: those after the last assistant message (the new user
 * message, the results of the client's own tools); the rest of the history is the server's. The
 * server's own tool results (`<call>:result`) are left out.
 */
function newMessages(messages: Message[]): Message[] {
  let last = messages.length - 1;
  while (last >= 0 && messages[last]!.role !== 'assistant') last--;
  return messages.slice(last + 1).filter((m) => !(m.role === 'tool' && m.id === `${m.toolCallId}:result`));
}
