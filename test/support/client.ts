/**
 * A real WebSocket client for the tests (the `ws` package). Every frame the server sends is
 * validated against the protocol schemas; an invalid frame fails the test that reads it. Every
 * wait has its own deadline (uvu has no timeouts).
 */
import WebSocket from 'ws';
import { checkServerFrame } from '../../protocol/validate.js';

export interface Frame {
  type: string;
  id?: string;
  payload: any;
}

export interface ConnectOptions {
  token?: string;
  via?: 'header' | 'protocol' | 'query';
  protocols?: string[];
}

export class TestClient {
  readonly frames: Frame[] = [];
  readonly invalid: string[] = [];
  /** Client-side socket errors (protocol violations by the server, resets). */
  readonly errors: string[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly requestTypes = new Map<string, string>();
  closeCode?: number;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = String(data);
      let frame: Frame;
      try {
        frame = JSON.parse(text);
      } catch {
        this.invalid.push(`not JSON: ${text.slice(0, 200)}`);
        return;
      }
      const problem = isBinary ? 'binary frame' : checkServerFrame(frame, frame.id ? this.requestTypes.get(frame.id) : undefined);
      if (problem) this.invalid.push(`${problem}: ${text.slice(0, 300)}`);
      this.frames.push(frame);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', (error) => {
      this.errors.push(error.message);
      this.wake();
    });
  }

  static async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const { token, via = 'header' } = options;
    let target = url;
    const headers: Record<string, string> = {};
    let protocols = options.protocols;
    if (token && via === 'header') headers.authorization = `Bearer ${token}`;
    if (token && via === 'query') target += `?access_token=${encodeURIComponent(token)}`;
    if (token && via === 'protocol') protocols = ['chat.v1', `bearer.${token}`];
    const ws = new WebSocket(target, protocols, { headers });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timed out')), 5_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return client;
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** Waits until `predicate` holds for the frames so far; returns its value. */
  async until<T>(predicate: () => T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
    const check = () => {
      if (this.invalid.length) throw new Error(`server sent an invalid frame: ${this.invalid[0]}`);
      return predicate();
    };
    const first = check();
    if (first) return first;
    return new Promise<T>((resolve, reject) => {
      const waiter = () => {
        try {
          const value = check();
          if (value) {
            done();
            resolve(value);
          } else if (this.closeCode !== undefined && what !== 'close') {
            done();
            reject(new Error(`socket closed (${this.closeCode}) while waiting for ${what}${this.errors.length ? `: ${this.errors.join('; ')}` : ''}`));
          }
        } catch (error) {
          done();
          reject(error);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last frames: ${JSON.stringify(this.frames.slice(-3))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  /** The first frame (after index `from`) matching, waiting for it. */
  next(match: (f: Frame) => boolean, timeoutMs?: number, from = 0): Promise<Frame> {
    return this.until(() => this.frames.slice(from).find(match), timeoutMs, 'frame');
  }

  /** Sends a request frame and resolves with its `ack` or `error` (matched by id). */
  async request(type: string, payload: unknown, timeoutMs?: number): Promise<Frame> {
    const id = `r${this.nextId++}`;
    this.requestTypes.set(id, type);
    this.send({ type, id, payload });
    return this.next((f) => f.id === id && (f.type === 'ack' || f.type === 'error' || f.type === 'pong'), timeoutMs);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Events of a thread received so far, in arrival order. */
  events(threadId: string): Frame[] {
    return this.frames.filter((f) => f.payload?.thread_id === threadId && typeof f.payload.seq === 'number');
  }

  /** Waits for the run's agent_completed. */
  completed(runId: string, timeoutMs = 15_000): Promise<Frame> {
    return this.next((f) => f.type === 'agent_completed' && f.payload.run_id === runId, timeoutMs);
  }

  waitClose(timeoutMs = 5_000): Promise<number> {
    return this.until(() => this.closeCode, timeoutMs, 'close');
  }

  /** Close handshake (1000), waiting for the server's answer. */
  async closeGracefully(timeoutMs = 5_000): Promise<void> {
    if (this.closeCode !== undefined) return;
    this.ws.close(1000);
    await this.waitClose(timeoutMs);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}
