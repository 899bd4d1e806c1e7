/**
 * One benchmark socket (the `ws` package): connects with a token, matches answers to requests by
 * id, and records every thread event it receives, per thread, with its receive time, so the
 * driver can check gap-free, exactly-once delivery and measure latencies afterwards.
 */
import WebSocket from 'ws';

export interface RunTrack {
  deltas: string[];
  completed: number;
  status?: string;
  content?: string;
  firstDeltaAt?: number;
  completedAt?: number;
}

export interface ThreadTrack {
  seqs: number[];
  runs: Map<string, RunTrack>;
}

export class BenchSocket {
  ws?: WebSocket;
  readonly threads = new Map<string, ThreadTrack>();
  /** Client receive time minus the event's timestamp (ms), one per event received live or replayed. */
  readonly lags: number[] = [];
  readonly problems: string[] = [];
  /** Characters of the thread-event frames received (their mean size sizes the ceiling's rows). */
  eventChars = 0;
  closeCode?: number;
  /** Set when the driver drops the socket on purpose (the reconnect storm). */
  dropped = false;
  private readonly answers = new Map<string, (frame: { type: string; payload: any }) => void>();
  private readonly waiters = new Set<() => void>();
  private nextId = 1;

  constructor(readonly user: string) {}

  connect(url: string, token: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`connect: no session.ready within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on('message', (data) => {
        const text = String(data);
        if (text.startsWith('{"type":"session.ready"')) {
          clearTimeout(timer);
          resolve();
          return;
        }
        this.onFrame(text);
      });
      ws.on('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`handshake refused: HTTP ${res.statusCode}`));
      });
      ws.on('error', (error) => {
        clearTimeout(timer);
        if (!this.dropped) this.problems.push(`socket error: ${error.message}`);
        reject(error);
      });
      ws.on('close', (code) => {
        clearTimeout(timer);
        this.closeCode = code;
        if (!this.dropped) this.problems.push(`closed by the server: ${code}`);
        reject(new Error(`closed (${code}) before session.ready`));
        this.wake();
      });
    });
  }

  /** Sends a request; resolves with its ack or error frame. */
  request(type: string, payload: unknown): Promise<{ type: string; payload: any; ms: number }> {
    const id = `r${this.nextId++}`;
    const sent = performance.now();
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return reject(new Error(`${type}: socket not open`));
      this.answers.set(id, (frame) => resolve({ ...frame, ms: performance.now() - sent }));
      this.ws.send(JSON.stringify({ type, id, payload }));
    });
  }

  track(threadId: string): ThreadTrack {
    let track = this.threads.get(threadId);
    if (!track) this.threads.set(threadId, (track = { seqs: [], runs: new Map() }));
    return track;
  }

  /** Resolves once `predicate` holds; rejects if the socket closes first or `deadline` (epoch ms) passes. */
  until(predicate: () => boolean, deadline: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          done();
          resolve();
        } else if (this.closeCode !== undefined && !this.dropped) {
          done();
          reject(new Error(`socket closed (${this.closeCode}) while waiting for ${what}`));
        } else if (Date.now() > deadline) {
          done();
          reject(new Error(`deadline passed while waiting for ${what}`));
        }
      };
      const timer = setInterval(check, 250);
      const done = () => {
        clearInterval(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Drops the TCP connection without a close handshake (as a network failure would). */
  drop(): void {
    this.dropped = true;
    this.ws?.terminate();
  }

  close(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.dropped = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2_000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000);
    });
  }

  private onFrame(text: string): void {
    const now = Date.now();
    let frame: { type: string; id?: string; payload: any };
    try {
      frame = JSON.parse(text);
    } catch {
      this.problems.push(`not JSON: ${text.slice(0, 100)}`);
      return;
    }
    const payload = frame.payload ?? {};
    if (frame.id !== undefined && this.answers.has(frame.id)) {
      const answer = this.answers.get(frame.id)!;
      this.answers.delete(frame.id);
      answer(frame);
    } else if (typeof payload.seq === 'number' && typeof payload.thread_id === 'string') {
      const track = this.track(payload.thread_id);
      track.seqs.push(payload.seq);
      this.eventChars += text.length;
      const stamp = Date.parse(payload.timestamp);
      if (Number.isFinite(stamp)) this.lags.push(now - stamp);
      if (payload.run_id) {
        let run = track.runs.get(payload.run_id);
        if (!run) track.runs.set(payload.run_id, (run = { deltas: [], completed: 0 }));
        if (frame.type === 'message_delta') {
          run.firstDeltaAt ??= performance.now();
          run.deltas.push(payload.delta);
        } else if (frame.type === 'agent_thinking' && payload.restarted) {
          run.deltas = [];
        } else if (frame.type === 'agent_completed') {
          run.completed++;
          run.completedAt ??= performance.now();
          run.status = payload.status;
          run.content = payload.message?.content;
        }
      }
    } else if (frame.type === 'error') {
      this.problems.push(`error frame: ${JSON.stringify(payload).slice(0, 200)}`);
    }
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
