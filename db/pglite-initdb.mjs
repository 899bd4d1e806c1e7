/**
 * Creates the embedded database in an empty folder: PGlite's initdb, run in a process of its own
 * by `createDatabase` (./pglite-create.ts) and exited. Creating a database grows a WASM heap to
 * about 450 MB more than serving one needs, and a heap never shrinks; in a process that then
 * serves, that memory would stay for its whole life. Plain JavaScript, run by node with no loader.
 *
 *   node pglite-initdb.mjs DIR
 */
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node pglite-initdb.mjs DIR\n');
  process.exit(2);
}
const db = await PGlite.create(dir);
await db.close();
