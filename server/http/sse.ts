/**
 * A `text/event-stream` answer on uWS: frames written as they come, with backpressure (a write
 * that uWS had to buffer makes `send` wait for `onWritable`, so a slow reader slows the producer
 * instead of growing the process's memory), every write corked, and the client's leaving seen at
 * once (`send` answers false, `signal` aborts).
 */
import { statusLine, type Exchange } from './reply.js';
import type { EventWriter, SseEvent } from './route.js';

export class SseStream implements EventWriter {
  private started = false;
  private waiting: Array<(written: boolean) => void> = [];

  constructor(
    private readonly exchange: Exchange,
    private readonly headers: Record<string, string>,
  ) {
    exchange.res.onWritable(() => {
      this.release(true);
      return true;
    });
    exchange.controller.signal.addEventListener('abort', () => this.release(false), { once: true });
  }

  /** Aborted when the client goes away. */
  get signal(): AbortSignal {
    return this.exchange.controller.signal;
  }

  /** True once the client has gone or the stream has ended: nothing more is written. */
  get closed(): boolean {
    return this.exchange.done;
  }

  /**
   * Writes one event. Resolves true once it is written or buffered while the socket keeps up, after
   * the socket drained when uWS had to hold it back; false when the client is gone.
   */
  send(event: SseEvent): Promise<boolean> {
    return this.write(format(event));
  }

  /** A comment line (`: text`), which clients ignore: a keep-alive through proxies, or sends the headers early. */
  comment(text: string): Promise<boolean> {
    return this.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
  }

  /** Ends the answer. Safe to call twice, and after the client left. */
  end(): void {
    if (this.exchange.done) return;
    const { res } = this.exchange;
    res.cork(() => {
      this.writeHead();
      if (this.exchange.head) res.endWithoutBody();
      else res.end();
    });
    this.exchange.done = true;
    this.release(false);
  }

  private write(text: string): Promise<boolean> {
    if (this.exchange.done) return Promise.resolve(false);
    let drained = true;
    const { res } = this.exchange;
    res.cork(() => {
      this.writeHead();
      drained = res.write(text);
    });
    if (drained) return Promise.resolve(true);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private writeHead(): void {
    if (this.started) return;
    this.started = true;
    const { res } = this.exchange;
    res.writeStatus(statusLine(200));
    for (const [name, value] of Object.entries({ ...this.exchange.common, ...SSE_HEADERS, ...this.headers })) res.writeHeader(name, value);
  }

  private release(written: boolean): void {
    for (const resolve of this.waiting.splice(0)) resolve(written);
  }
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-store',
  // nginx and similar proxies would otherwise buffer the stream.
  'x-accel-buffering': 'no',
};

/** One event in the wire format: `id:`, `event:`, then `data:` lines, then a blank line. */
export function format(event: SseEvent): string {
  const text = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
  let out = '';
  if (event.id !== undefined) out += `id: ${String(event.id).replace(/[\r\n]/g, '')}\n`;
  if (event.event !== undefined) out += `event: ${event.event.replace(/[\r\n]/g, '')}\n`;
  for (const line of text.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}
