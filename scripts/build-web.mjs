/**
 * Builds the browser bundles into dist/ (not committed): the client SDK (`convo-gateway/client`),
 * the `<convo-chat>` widget, and the AG-UI agent (`convo-gateway/agui`, with @ag-ui/client and rxjs
 * left to the application: peer dependencies), as ES modules for the package and the widget also as
 * one classic script the gateway serves at /convo-chat.js. Prints each size, raw and gzipped; the SDK must stay
 * within its budget (test/client-bundle.test.ts holds it there). With TypeScript installed (a
 * development checkout) it also writes the declarations the package entries point to.
 *
 * Nothing is built when nothing changed: `dist/.build-web.json` records a hash of every file the
 * bundles and the declarations were made from (scripts/build-manifest.mjs), their outputs and the
 * bundles' sizes; a part whose inputs hash the same and whose outputs are all there is not built
 * again, and its sizes come from the manifest.
 *
 *   node scripts/build-web.mjs            (npm run build:web; run by npm install and npm start)
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { hashInputs, readManifest, replaceFile, upToDate, writeManifest } from './build-manifest.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(root, 'dist');
/** The SDK's gzipped budget in bytes (issue #11: at most 10 KB). */
export const CLIENT_BUDGET = 10 * 1024;
const MANIFEST = '.build-web.json';
/** Read by every build besides the sources it reports: the build itself and the compilers. */
const BUILD_FILES = ['scripts/build-web.mjs', 'scripts/build-manifest.mjs', 'node_modules/esbuild/package.json'];
const TYPES_BUILD_FILES = ['scripts/build-web.mjs', 'scripts/build-manifest.mjs', 'node_modules/typescript/package.json'];

const targets = [
  { name: 'client.js', entry: 'protocol/client/index.ts', format: 'esm' },
  { name: 'widget.js', entry: 'web/index.ts', format: 'esm' },
  { name: 'convo-chat.js', entry: 'web/index.ts', format: 'iife' },
  { name: 'agui.js', entry: 'protocol/agui-client/index.ts', format: 'esm', external: ['@ag-ui/client', '@ag-ui/core', 'rxjs'] },
];

/**
 * Builds what is not up to date in `outdir` (default dist/); returns the bundles' sizes and the
 * source files each one holds (from the manifest when they were up to date).
 */
export async function buildWeb({ quiet = false, types = true, outdir = DIST } = {}) {
  const out = path.resolve(root, outdir);
  const manifestFile = path.join(out, MANIFEST);
  const previous = readManifest(manifestFile);
  const manifest = { bundles: previous?.bundles, types: previous?.types };
  const bundlesFresh = upToDate(root, out, previous?.bundles);
  if (!bundlesFresh) manifest.bundles = await buildBundles(out, previous?.bundles);
  let typesNote = 'skipped';
  if (types) {
    if (upToDate(root, out, previous?.types)) typesNote = 'up to date';
    else {
      const built = await buildDeclarations(out, previous?.types);
      typesNote = built ? `${built.outputs.length} declaration files` : 'skipped (typescript is not installed)';
      if (built) manifest.types = built;
    }
  }
  if (manifest.bundles !== previous?.bundles || manifest.types !== previous?.types) writeManifest(manifestFile, manifest);
  const results = manifest.bundles.results;
  if (!quiet) {
    const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
    if (bundlesFresh) process.stdout.write(`  ${path.relative(root, out)}/ browser bundles up to date\n`);
    else {
      for (const r of results) {
        const budget = r.name === 'client.js' ? ` (budget ${kb(CLIENT_BUDGET)} gzipped${r.gzipBytes > CLIENT_BUDGET ? ': OVER' : ''})` : '';
        process.stdout.write(`  ${path.relative(root, out)}/${r.name.padEnd(14)} ${kb(r.bytes).padStart(9)}  gzipped ${kb(r.gzipBytes).padStart(8)}${budget}\n`);
      }
    }
    process.stdout.write(`  ${path.relative(root, out)}/types/          ${typesNote}\n`);
  }
  return results;
}

async function buildBundles(out, previous) {
  // Loaded only to build: a check that finds everything up to date does not start esbuild.
  const { build } = await import('esbuild');
  const results = [];
  const written = new Set();
  const read = [...BUILD_FILES];
  for (const target of targets) {
    const built = await build({
      absWorkingDir: root,
      entryPoints: [path.join(root, target.entry)],
      bundle: true,
      format: target.format,
      external: target.external ?? [],
      platform: 'browser',
      target: ['es2020'],
      minify: true,
      sourcemap: 'linked',
      legalComments: 'eof',
      metafile: true,
      write: false,
      outfile: path.join(out, target.name),
      logLevel: 'silent',
    });
    mkdirSync(out, { recursive: true });
    for (const file of built.outputFiles) {
      replaceFile(file.path, file.contents);
      written.add(path.relative(out, file.path));
    }
    const js = built.outputFiles.find((f) => f.path.endsWith('.js'));
    const inputs = Object.keys(built.metafile.inputs);
    read.push(...inputs);
    results.push({
      name: target.name,
      bytes: js.contents.byteLength,
      gzipBytes: gzipSync(js.contents, { level: 9 }).byteLength,
      inputs,
    });
  }
  removeStale(out, previous, written);
  return { inputs: hashInputs(root, read), outputs: [...written].sort(), results };
}

/** Declarations of the package entries, when TypeScript is installed (it is a dev dependency). */
async function buildDeclarations(out, previous) {
  let ts;
  try {
    ts = (await import('typescript')).default;
  } catch {
    return undefined;
  }
  const typesDir = path.join(out, 'types');
  const options = {
    declaration: true, emitDeclarationOnly: true, outDir: typesDir, rootDir: root,
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  };
  const files = new Map();
  const host = ts.createCompilerHost(options);
  host.writeFile = (name, text) => files.set(name, text);
  const entries = ['protocol/client/index.ts', 'web/index.ts', 'protocol/agui-client/index.ts'];
  const program = ts.createProgram(entries.map((entry) => path.join(root, entry)), options, host);
  const emitted = program.emit();
  const problems = ts.getPreEmitDiagnostics(program).concat(emitted.diagnostics);
  if (problems.length > 0) {
    throw new Error(ts.formatDiagnostics(problems, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' }));
  }
  const written = new Set();
  for (const [name, text] of files) {
    mkdirSync(path.dirname(name), { recursive: true });
    replaceFile(name, text);
    written.add(path.relative(out, name));
  }
  removeStale(out, previous, written);
  // The sources the declarations come from; TypeScript's own libraries are covered by its version.
  const read = program.getSourceFiles().filter((f) => !program.isSourceFileDefaultLibrary(f)).map((f) => path.relative(root, f.fileName));
  return { inputs: hashInputs(root, [...read, ...TYPES_BUILD_FILES]), outputs: [...written].sort() };
}

/** Removes what the previous build of this part wrote and this one did not. */
function removeStale(out, previous, written) {
  for (const name of previous?.outputs ?? []) {
    if (!written.has(name)) rmSync(path.join(out, name), { force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now();
  buildWeb().then(
    () => process.stdout.write(`  web build done in ${Date.now() - started} ms\n`),
    (error) => {
      process.stderr.write(`build-web failed: ${error?.message ?? error}\n`);
      process.exit(1);
    },
  );
}
