/**
 * Builds the server for production: esbuild bundles our TypeScript into plain ESM JavaScript in
 * `dist/` (Node 20, with source maps), leaving every package in node_modules external (they are
 * installed beside it; uWebSockets.js is a native addon and cannot be bundled).
 *
 *   node scripts/build-server.mjs [--outdir dist]
 *
 * The output is flat: the entry points (`dist/server.js`, `dist/llm-sim.js`, `dist/token.js`) and
 * the chunks they share or load on demand (`dist/<name>-<hash>.js`) sit in one folder, so a file that
 * the code finds with `new URL('./x', import.meta.url)` (the embedded database's worker thread,
 * db/pglite-thread.mjs) is found next to whichever chunk the code ended up in. Such files are
 * copied beside the bundle; two of them with the same name stop the build.
 * Code splitting keeps a dynamic `import()` lazy: a gateway-only process never loads the worker's
 * chunk, nor the packages (openai) only that chunk imports.
 *
 * Nothing is built when nothing changed: `dist/.build-server.json` records a hash of every file the
 * last build read (scripts/build-manifest.mjs) and the files it wrote, and a build whose inputs
 * hash the same and whose outputs are all there writes nothing. Only files of the previous server
 * build are removed when they are no longer written; the browser bundles beside them are
 * scripts/build-web.mjs's.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hashInputs, readManifest, replaceFile, upToDate, writeManifest } from './build-manifest.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFEST = '.build-server.json';
/** Read by every build besides the sources esbuild reports: the build itself and its settings. */
const BUILD_FILES = ['scripts/build-server.mjs', 'scripts/build-manifest.mjs', 'tsconfig.json', 'node_modules/esbuild/package.json'];
/** esbuild's chunk names (`[name]-[hash]`): what a server build without a manifest may remove. */
const CHUNK = /^[\w.-]+-[A-Z0-9]{8}\.js(\.map)?$/;

/** The programs, by output name. */
export const ENTRY_POINTS = {
  server: 'app/main.ts',
  'llm-sim': 'workers/llm-sim-main.ts',
  token: 'scripts/token.ts',
};

const RELATIVE_URL = /new URL\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Builds into `outdir` (relative to the project root) unless the build there is up to date; returns
 * the entry outputs, whether it built, and the time taken.
 */
export async function buildServer({ outdir = 'dist', quiet = false } = {}) {
  const started = performance.now();
  const out = path.resolve(root, outdir);
  const manifestFile = path.join(out, MANIFEST);
  const previous = readManifest(manifestFile);
  if (upToDate(root, out, previous)) {
    const seconds = (performance.now() - started) / 1000;
    if (!quiet) process.stdout.write(`${path.relative(root, out) || '.'}/ server build up to date (checked in ${seconds.toFixed(2)} s)\n`);
    return { outdir: out, outputs: previous.entries, copied: previous.copied, seconds, built: false };
  }
  mkdirSync(out, { recursive: true });
  // Loaded only to build: a check that finds the build up to date does not start esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    write: false,
    absWorkingDir: root,
    entryPoints: ENTRY_POINTS,
    outdir: out,
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    metafile: true,
    logLevel: quiet ? 'error' : 'warning',
  });
  // A process may be running from this folder right now (a server started by an earlier build):
  // files are only replaced when they changed, each by an atomic rename, and stale ones removed.
  const written = new Set();
  for (const file of result.outputFiles) {
    replaceFile(file.path, file.contents);
    written.add(path.basename(file.path));
  }
  // Files the bundled code reaches through import.meta.url: copied next to the bundle.
  const copied = new Map();
  for (const input of Object.keys(result.metafile.inputs)) {
    if (input.startsWith('node_modules/') || !/\.[cm]?[jt]s$/.test(input)) continue;
    const source = readFileSync(path.join(root, input), 'utf8');
    for (const match of source.matchAll(RELATIVE_URL)) {
      const from = path.resolve(root, path.dirname(input), match[2]);
      const name = path.basename(match[2]);
      if (copied.has(name) && copied.get(name) !== from) throw new Error(`two files named ${name} are loaded by URL: ${copied.get(name)} and ${from}`);
      if (match[2] !== `./${name}`) throw new Error(`${input}: ${match[2]} is not beside the file; only ./name URLs survive bundling`);
      if (!existsSync(from)) throw new Error(`${input}: ${match[2]} does not exist`);
      replaceFile(path.join(out, name), readFileSync(from));
      copied.set(name, from);
      written.add(name);
    }
  }
  // What the previous server build wrote and this one did not (chunks whose hash changed); with no
  // manifest, files named like esbuild's chunks. Anything else in the folder is not ours.
  const stale = previous?.outputs ?? readdirSync(out).filter((name) => CHUNK.test(name));
  for (const name of stale) {
    if (!written.has(name)) rmSync(path.join(out, name), { force: true });
  }
  const outputs = Object.keys(result.metafile.outputs).filter((file) => !file.endsWith('.map'));
  const read = [...Object.keys(result.metafile.inputs), ...[...copied.values()].map((file) => path.relative(root, file)), ...BUILD_FILES];
  writeManifest(manifestFile, { inputs: hashInputs(root, read), outputs: [...written].sort(), entries: outputs, copied: [...copied.keys()] });
  const seconds = (performance.now() - started) / 1000;
  if (!quiet) {
    const size = (file) => (result.metafile.outputs[file].bytes / 1024).toFixed(1);
    process.stdout.write(`built ${path.relative(root, out) || '.'}/ in ${seconds.toFixed(2)} s: ${outputs.map((f) => `${path.basename(f)} (${size(f)} KiB)`).join(', ')}` +
      `${copied.size ? `; copied ${[...copied.keys()].join(', ')}` : ''}\n`);
  }
  return { outdir: out, outputs, copied: [...copied.keys()], seconds, built: true };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--outdir');
  buildServer({ outdir: at > 0 ? process.argv[at + 1] : 'dist' }).catch((error) => {
    process.stderr.write(`build failed: ${error?.message ?? error}\n`);
    process.exit(1);
  });
}
