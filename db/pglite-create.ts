/**
 * The embedded database's first start. PGlite creates a database (initdb) in the process that
 * opens an empty folder, and doing so grows that process's memory by about 450 MB that is never
 * given back (a WASM heap does not shrink, and the freed part of the rest stays with the
 * allocator). So an empty folder is first filled by a short-lived process of its own
 * (./pglite-initdb.mjs), and the serving thread then opens the database as a restart does. It costs
 * a first start the time to open the database once more (about half a second).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when `dir` holds no database yet (Postgres writes PG_VERSION first thing). */
export function needsCreating(dir: string): boolean {
  return !existsSync(path.join(dir, 'PG_VERSION'));
}

/** Runs initdb for `dir` in a child process; rejects with its output if it fails. */
export function createDatabase(dir: string): Promise<void> {
  const script = fileURLToPath(new URL('./pglite-initdb.mjs', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, dir], { maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve();
      const output = `${stderr}${stdout}`.trim().slice(-2_000);
      reject(new Error(`creating the embedded database in ${dir} failed (${error.code ?? error.signal}): ${output || error.message}`));
    });
  });
}
