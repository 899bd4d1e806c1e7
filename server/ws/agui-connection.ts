/**
 * A socket speaking the `agui.v1` subprotocol: its frames out are bare AG-UI events, so the native
 * protocol's own notices (`session.ready`, `auth.expiring`) are not sent on it; everything else of
 * a connection holds (the send path and its backpressure, frame intake and its limits, the token's
 * expiry closing with 4001, errors as `error` frames). It follows one thread at a time: a new
 * `agui.run` or `agui.connect` replaces the stream before it.
 */
import { AGUI_SUBPROTOCOL } from '../../protocol/agui.js';
import { CloseCodes, PROTOCOL } from '../../protocol/codes.js';
import type { ServerPayloads } from '../../protocol/frames.js';
import { Connection } from './connection.js';
import type { ServerFrameType } from './frame-encode.js';

/** A replayed stream whose client takes nothing for this long is cut off (1013), as a native replay. */
const STALL_MS = 3_000;

/** The subprotocol the upgrade answers: agui.v1 when offered (before chat.v1, if both are), else the native one's choice. */
export function chooseSubprotocol(protocolHeader: string, native: string): string {
  const offered = protocolHeader.split(',').map((p) => p.trim());
  const agui = offered.indexOf(AGUI_SUBPROTOCOL);
  if (agui < 0) return native;
  const chat = offered.indexOf(PROTOCOL);
  return chat >= 0 && chat < agui ? native : AGUI_SUBPROTOCOL;
}

export class AguiConnection extends Connection {
  private stream?: AbortController;

  override sendFrame<T extends ServerFrameType>(type: T, payload: ServerPayloads[T], id?: string): boolean {
    // Not AG-UI events: a client reading bare events would choke on them.
    if (type === 'session.ready' || type === 'auth.expiring') return !this.closed;
    return super.sendFrame(type, payload, id);
  }

  /** Sends one AG-UI event, paced by the socket; false once the stream was replaced or the socket closed. */
  async sendEvent(event: object, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted || this.closed) return false;
    if (!this.hasRoom()) await this.drained(STALL_MS);
    if (signal.aborted || this.closed) return false;
    return this.send(JSON.stringify(event));
  }

  /** Starts a stream, ending the one before; `run` gets the signal that ends it. */
  follow(run: (signal: AbortSignal) => Promise<unknown>): void {
    this.stream?.abort();
    const stream = (this.stream = new AbortController());
    run(stream.signal).catch((error: unknown) => {
      if (stream.signal.aborted || this.closed) return;
      // The stream has begun: an error frame would leave the client short of events without a
      // way to tell. Closed (1011), the client reconnects and resumes from its last position.
      this.log.warn({ err: error }, 'AG-UI stream failed; closing so the client resumes');
      this.close(CloseCodes.internal_error, 'the stream failed; reconnect and resume');
    });
  }

  override close(code: number, reason: string): void {
    this.stream?.abort();
    super.close(code, reason);
  }

  override markClosed(): void {
    this.stream?.abort();
    super.markClosed();
  }
}
