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
 */
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The programs, by output name. */
export const ENTRY_POINTS = {
  server: 'server/main.ts',
  'llm-sim': 'workers/llm-sim-main.ts',
  token: 'scripts/token.ts',
};

const RELATIVE_URL = /new URL\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g;

/** Builds into `outdir` (relative to the project root); returns the files written and the time taken. */
export async function buildServer({ outdir = 'dist', quiet = false } = {}) {
  const started = performance.now();
  const out = path.resolve(root, outdir);
  mkdirSync(out, { recursive: true });
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
  for (const name of readdirSync(out)) {
    if (!written.has(name)) rmSync(path.join(out, name), { recursive: true, force: true });
  }
  const outputs = Object.keys(result.metafile.outputs).filter((file) => !file.endsWith('.map'));
  const seconds = (performance.now() - started) / 1000;
  if (!quiet) {
    const size = (file) => (result.metafile.outputs[file].bytes / 1024).toFixed(1);
    process.stdout.write(`built ${path.relative(root, out) || '.'}/ in ${seconds.toFixed(2)} s: ${outputs.map((f) => `${path.basename(f)} (${size(f)} KiB)`).join(', ')}` +
      `${copied.size ? `; copied ${[...copied.keys()].join(', ')}` : ''}\n`);
  }
  return { outdir: out, outputs, copied: [...copied.keys()], seconds };
}

/** Writes `contents` to `file` unless it holds them already; never leaves a half-written file. */
function replaceFile(file, contents) {
  const bytes = Buffer.from(contents);
  if (existsSync(file) && readFileSync(file).equals(bytes)) return;
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, bytes);
  renameSync(temp, file);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--outdir');
  buildServer({ outdir: at > 0 ? process.argv[at + 1] : 'dist' }).catch((error) => {
    process.stderr.write(`build failed: ${error?.message ?? error}\n`);
    process.exit(1);
  });
}
