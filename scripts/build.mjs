/**
 * `npm run build`, and what `npm start`, `npm run gateway`, `npm run worker` and `npm run llm-sim`
 * run first: the server build (scripts/build-server.mjs) and the browser bundles
 * (scripts/build-web.mjs) in one process, each skipped when its inputs have not changed since it
 * was last built, so a start with nothing to rebuild pays for one hash of the sources.
 *
 *   node scripts/build.mjs [--outdir dist]
 */
import { buildServer } from './build-server.mjs';
import { buildWeb } from './build-web.mjs';

const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? process.argv[at + 1] : 'dist';
try {
  await buildServer({ outdir });
  await buildWeb({ outdir });
} catch (error) {
  process.stderr.write(`build failed: ${error?.message ?? error}\n`);
  process.exit(1);
}
