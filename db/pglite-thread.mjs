/**
 * The embedded database's thread: PGlite (Postgres compiled to WASM) runs here, not on the main
 * thread, so a burst of queries does not stall the event loop that serves the sockets. The main
 * thread talks to it through `PGliteThreadClient` (./pglite-client.ts): one message per query.
 * Plain JavaScript: a worker thread does not get the main thread's TypeScript loader.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

/**
 * Postgres settings of the embedded database. shared_buffers is half of Postgres's default 128MB:
 * PGlite writes the whole buffer pool into its WASM heap at start, so every MB of it is resident
 * from the first second, and 128MB was a third of the embedded server's memory at rest while its
 * database is typically a few MB. Pages beyond it are read from the OS's file cache.
 */
const SETTINGS = ['-c', 'shared_buffers=64MB'];

const port = parentPort;
try {
  const db = await PGlite.create(workerData.dir, { startParams: [...PGlite.defaultStartParams, ...SETTINGS] });
  port.on('message', (request) => {
    if (request.close) {
      void db.close().finally(() => port.postMessage({ id: request.id, closed: true }));
      return;
    }
    db.query(request.sql, request.params).then(
      (result) => port.postMessage({ id: request.id, rows: result.rows, affectedRows: result.affectedRows }),
      (error) =>
        port.postMessage({
          id: request.id,
          error: { message: String(error?.message ?? error), code: error?.code, detail: error?.detail, constraint: error?.constraint },
        }),
    );
  });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ failed: String(error?.message ?? error) });
}
