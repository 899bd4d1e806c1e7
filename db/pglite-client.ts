/**
 * The main thread's handle on the embedded database thread (./pglite-thread.mjs). It offers the two
 * methods kysely-pglite-dialect uses (`query`, `close`), so the dialect, and every query above it,
 * is unchanged. Errors keep Postgres's `code`, `detail` and `constraint`.
 */
import { Worker } from 'node:worker_threads';
import { createDatabase, needsCreating } from './pglite-create.js';

/** The messages exchanged with ./pglite-thread.mjs. */
type Request = { id: number; sql: string; params: unknown[] } | { id: number; close: true };
type Reply =
  | { id: number; rows: unknown[]; affectedRows?: number }
  | { id: number; error: { message: string; code?: string; detail?: string; constraint?: string } }
  | { id: number; closed: true };

export class PGliteThreadClient {
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private exited?: Error;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      waiter.resolve(reply);
    });
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`the embedded database thread exited (code ${code})`)));
  }

  /** Starts the thread and opens the database in `dir`. */
  static async open(dir: string): Promise<PGliteThreadClient> {
    if (needsCreating(dir)) await createDatabase(dir);
    const worker = new Worker(new URL('./pglite-thread.mjs', import.meta.url), { workerData: { dir } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: true; failed?: string }) => {
        if (message.ready) resolve();
        else if (message.failed) reject(new Error(message.failed));
        else return;
        worker.off('message', onMessage);
        worker.off('error', reject);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    }).catch(async (error) => {
      await worker.terminate();
      throw error;
    });
    return new PGliteThreadClient(worker);
  }

  async query(sql: string, params: unknown[] = []): Promise<{ rows: unknown[]; affectedRows?: number }> {
    const reply = await this.send({ id: this.nextId++, sql, params });
    if ('error' in reply) throw Object.assign(new Error(reply.error.message), reply.error);
    if ('rows' in reply) return { rows: reply.rows, affectedRows: reply.affectedRows };
    throw new Error('unexpected reply from the embedded database thread');
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await this.send({ id: this.nextId++, close: true }).catch(() => {});
    await this.worker.terminate();
  }

  private send(request: Request): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      this.worker.postMessage(request);
    });
  }

  private fail(error: Error): void {
    this.exited ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
