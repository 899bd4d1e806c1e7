/**
 * One simulated user: a WebSocket (the `ws` package) that connects, waits for `session.ready`,
 * then sends its turns one after another on one thread, each waiting for its own run's
 * `agent_completed`. It records timings and everything needed for the correctness checks.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export interface RunTrack {
  deltas: string[];
  firstDeltaAt?: number;
  completedAt?: number;
  /** agent_completed frames seen for this run (must end up exactly 1). */
  completed: number;
  status?: string;
  content?: string;
}

export interface TurnRecord {
  runId?: string;
  ackMs?: number;
  firstDeltaMs?: number;
  turnMs?: number;
}

interface Response {
  type: string;
  payload: any;
  at: number;
}

export class LoadClient {
  ws?: WebSocket;
  connectMs?: number;
  threadId?: string;
  readonly turns: TurnRecord[] = [];
  readonly runs = new Map<string, RunTrack>();
  /** Thread-event seqs in arrival order. */
  readonly seqs: number[] = [];
  readonly threadIds = new Set<string>();
  readonly problems: string[] = [];
  events = 0;
  frames = 0;
  closeCode?: number;
  private readyAt?: number;
  private readonly responses = new Map<string, Response>();
  private readonly waiters = new Set<() => void>();

  constructor(readonly index: number, private readonly signal: AbortSignal) {
    signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  async connect(url: string, token: string): Promise<void> {
    const started = performance.now();
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', (error) => {
      this.problems.push(`socket error: ${error.message}`);
      this.wake();
    });
    ws.on('unexpected-response', (_req, res) => {
      this.problems.push(`handshake refused: HTTP ${res.statusCode}`);
      res.resume();
      ws.terminate();
    });
    await this.until(() => this.readyAt !== undefined, 'session.ready');
    this.connectMs = this.readyAt! - started;
  }

  async runTurns(count: number): Promise<void> {
    for (let turn = 1; turn <= count; turn++) {
      const record: TurnRecord = {};
      this.turns.push(record);
      const id = `t${turn}`;
      const sentAt = performance.now();
      this.ws!.send(JSON.stringify({
        type: 'message.send',
        id,
        payload: {
          content: `Load test client ${this.index} turn ${turn}: tell me something.`,
          client_message_id: `lt-${this.index}-${turn}`,
          ...(this.threadId ? { thread_id: this.threadId } : {}),
        },
      }));
      const answer = await this.until(() => this.responses.get(id), `answer to ${id}`);
      if (answer.type !== 'ack') {
        throw new Error(`${id} answered ${answer.type} ${JSON.stringify(answer.payload)}`);
      }
      record.ackMs = answer.at - sentAt;
      record.runId = answer.payload.run_id as string;
      this.threadId ??= answer.payload.thread_id as string;
      const run = await this.until(() => {
        const track = this.runs.get(record.runId!);
        return track?.completedAt !== undefined ? track : undefined;
      }, `agent_completed of ${record.runId}`);
      if (run.firstDeltaAt !== undefined) record.firstDeltaMs = run.firstDeltaAt - sentAt;
      record.turnMs = run.completedAt! - sentAt;
    }
  }

  /** Close handshake, bounded; a socket that does not answer is terminated. */
  async close(timeoutMs = 2_000): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    });
  }

  private onMessage(text: string): void {
    const at = performance.now();
    this.frames++;
    let frame: { type?: string; id?: string; payload?: any };
    try {
      frame = JSON.parse(text);
    } catch {
      this.problems.push(`frame is not JSON: ${text.slice(0, 120)}`);
      return;
    }
    const payload = frame.payload ?? {};
    if (frame.type === 'session.ready') {
      this.readyAt ??= at;
    } else if (typeof payload.seq === 'number') {
      this.onEvent(frame.type ?? '', payload, at);
    } else if (frame.id !== undefined) {
      this.responses.set(frame.id, { type: frame.type ?? '', payload, at });
    } else if (frame.type === 'error') {
      this.problems.push(`error frame: ${JSON.stringify(payload)}`);
    }
    this.wake();
  }

  private onEvent(type: string, payload: any, at: number): void {
    this.events++;
    this.seqs.push(payload.seq);
    this.threadIds.add(payload.thread_id);
    const runId = String(payload.run_id);
    let run = this.runs.get(runId);
    if (!run) this.runs.set(runId, (run = { deltas: [], completed: 0 }));
    if (type === 'message_delta') {
      run.firstDeltaAt ??= at;
      run.deltas.push(payload.delta);
    } else if (type === 'agent_completed') {
      run.completed++;
      run.completedAt ??= at;
      run.status = payload.status;
      run.content = payload.message?.content;
    }
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves with the predicate's value once it holds; rejects on close or the global deadline. */
  private until<T>(predicate: () => T | undefined | false, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = predicate();
        if (value) {
          done();
          resolve(value);
        } else if (this.signal.aborted) {
          done();
          reject(new Error(`deadline passed while waiting for ${what}`));
        } else if (this.closeCode !== undefined || this.ws?.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed (${this.closeCode ?? 'no code'}) while waiting for ${what}`));
        }
      };
      const done = () => this.waiters.delete(check);
      this.waiters.add(check);
      check();
    });
  }
}
