/**
 * Builds the browser bundles into dist/ (not committed): the client SDK (`convo-gateway/client`)
 * and the `<convo-chat>` widget, as ES modules for the package and the widget also as one classic
 * script the gateway serves at /convo-chat.js. Prints each size, raw and gzipped; the SDK must stay
 * within its budget (test/client-bundle.test.ts holds it there). With TypeScript installed (a
 * development checkout) it also writes the declarations the package entries point to.
 *
 *   node scripts/build-web.mjs            (npm run build:web; run by npm install and npm start)
 */
import { build } from 'esbuild';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(root, 'dist');
/** The SDK's gzipped budget in bytes (issue #11: at most 10 KB). */
export const CLIENT_BUDGET = 10 * 1024;

const targets = [
  { name: 'client.js', entry: 'protocol/client/index.ts', format: 'esm' },
  { name: 'widget.js', entry: 'web/index.ts', format: 'esm' },
  { name: 'convo-chat.js', entry: 'web/index.ts', format: 'iife' },
];

/** Writes next to the target and renames, so a reader (or a parallel build) never sees half a file. */
async function writeAtomic(file, contents) {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, contents);
  await rename(temporary, file);
}

/** Builds every bundle; returns their sizes and the source files each one holds. */
export async function buildWeb({ quiet = false, types = true } = {}) {
  const results = [];
  for (const target of targets) {
    const out = await build({
      entryPoints: [path.join(root, target.entry)],
      bundle: true,
      format: target.format,
      platform: 'browser',
      target: ['es2020'],
      minify: true,
      sourcemap: 'linked',
      legalComments: 'eof',
      metafile: true,
      write: false,
      outfile: path.join(DIST, target.name),
      logLevel: 'silent',
    });
    for (const file of out.outputFiles) await writeAtomic(file.path, file.contents);
    const js = out.outputFiles.find((f) => f.path.endsWith('.js'));
    results.push({
      name: target.name,
      bytes: js.contents.byteLength,
      gzipBytes: gzipSync(js.contents, { level: 9 }).byteLength,
      inputs: Object.keys(out.metafile.inputs),
    });
  }
  const typesNote = types ? await buildDeclarations() : 'skipped';
  if (!quiet) {
    const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
    for (const r of results) {
      const budget = r.name === 'client.js' ? ` (budget ${kb(CLIENT_BUDGET)} gzipped${r.gzipBytes > CLIENT_BUDGET ? ': OVER' : ''})` : '';
      process.stdout.write(`  dist/${r.name.padEnd(14)} ${kb(r.bytes).padStart(9)}  gzipped ${kb(r.gzipBytes).padStart(8)}${budget}\n`);
    }
    process.stdout.write(`  dist/types/          ${typesNote}\n`);
  }
  return results;
}

/** Declarations of the two package entries, when TypeScript is installed (it is a dev dependency). */
async function buildDeclarations() {
  if (await declarationsFresh()) return 'up to date';
  let ts;
  try {
    ts = (await import('typescript')).default;
  } catch {
    return 'skipped (typescript is not installed)';
  }
  const options = {
    declaration: true, emitDeclarationOnly: true, outDir: path.join(DIST, 'types'), rootDir: root,
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  };
  const files = new Map();
  const host = ts.createCompilerHost(options);
  host.writeFile = (name, text) => files.set(name, text);
  const program = ts.createProgram([path.join(root, 'protocol/client/index.ts'), path.join(root, 'web/index.ts')], options, host);
  const emitted = program.emit();
  const problems = ts.getPreEmitDiagnostics(program).concat(emitted.diagnostics);
  if (problems.length > 0) {
    throw new Error(ts.formatDiagnostics(problems, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' }));
  }
  for (const [name, text] of files) await writeAtomic(name, text);
  return `${files.size} declaration files`;
}

/** Whether the declarations are newer than every source file they come from (start-up stays fast). */
async function declarationsFresh() {
  const marker = await stat(path.join(DIST, 'types/protocol/client/index.d.ts')).catch(() => undefined);
  if (!marker) return false;
  for (const folder of ['protocol', 'protocol/client', 'web']) {
    for (const entry of await readdir(path.join(root, folder), { withFileTypes: true })) {
      if (entry.isFile() && (await stat(path.join(root, folder, entry.name))).mtimeMs > marker.mtimeMs) return false;
    }
  }
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now();
  buildWeb().then(
    () => process.stdout.write(`  web bundles built in ${Date.now() - started} ms\n`),
    (error) => {
      process.stderr.write(`build-web failed: ${error?.message ?? error}\n`);
      process.exit(1);
    },
  );
}
