/**
 * A raw `agui.v1` socket for the tests (the `ws` package): every frame it gets is kept, AG-UI events
 * and `error` frames apart, and every wait has its deadline. The events are checked by the tests
 * with @ag-ui's validators (./agui.ts).
 */
import WebSocket from 'ws';

export interface AguiFrameEvent {
  type: string;
  metadata?: { seq?: number; part?: number; prelude?: boolean };
  [key: string]: any;
}

export class AguiSocket {
  readonly events: AguiFrameEvent[] = [];
  readonly errors: Array<{ id?: string; payload: { code: string; message: string; last_seq?: number } }> = [];
  closeCode?: number;
  closeReason?: string;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as AguiFrameEvent;
      // The one frame that is not an AG-UI event: the protocol's `error` (AG-UI types are upper case).
      if (frame.type === 'error') this.errors.push(frame as never);
      else this.events.push(frame);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
      this.wake();
    });
  }

  /** Opens a socket offering `protocols` (default: agui.v1 with the token as `bearer.<jwt>`). */
  static async open(url: string, token: string | undefined, options: { protocols?: string[]; headers?: Record<string, string>; query?: string } = {}): Promise<AguiSocket> {
    const protocols = options.protocols ?? ['agui.v1', ...(token ? [`bearer.${token}`] : [])];
    const ws = new WebSocket(url + (options.query ?? ''), protocols, { headers: options.headers ?? {} });
    const socket = new AguiSocket(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timed out')), 5_000);
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }))));
      ws.once('error', (error) => (clearTimeout(timer), reject(error)));
    });
    return socket;
  }

  send(type: string, payload: unknown, id?: string): void {
    this.ws.send(JSON.stringify({ type, ...(id ? { id } : {}), payload }));
  }

  /** Resolves once `predicate` holds; rejects at the deadline or when the socket closes first. */
  until(predicate: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) return finish(), resolve();
        if (this.closeCode !== undefined && what !== 'close') finish(), reject(new Error(`socket closed (${this.closeCode} ${this.closeReason}) waiting for ${what}`));
      };
      const timer = setTimeout(() => (finish(), reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.events.length} events, last ${JSON.stringify(this.events.at(-1))}; errors ${JSON.stringify(this.errors)}`))), timeoutMs);
      const finish = () => (clearTimeout(timer), this.waiters.delete(check));
      this.waiters.add(check);
      check();
    });
  }

  /** Waits for `count` events in all. */
  untilCount(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= count, timeoutMs, `${count} events`);
  }

  /** Waits for the `n`th event ending a run (RUN_FINISHED or RUN_ERROR); 1 by default. */
  untilRunsEnd(n = 1, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.filter((e) => e.type === 'RUN_FINISHED' || e.type === 'RUN_ERROR').length >= n, timeoutMs, `${n} runs to end`);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
