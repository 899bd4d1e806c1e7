/**
 * The builds `npm start` runs first (scripts/build.mjs: scripts/build-server.mjs and
 * scripts/build-web.mjs): a build with nothing changed writes nothing and takes well under a
 * second, a changed input or a missing output builds again, and neither build removes the
 * other's files from the folder they share.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildServer } from '../scripts/build-server.mjs';
import { buildWeb } from '../scripts/build-web.mjs';
import { cleanEnv, run } from './support/process.js';

interface Ctx {
  out: string;
}

const test = suite<Ctx>('builds');

test.before(async (ctx) => {
  ctx.out = await mkdtemp(path.join(os.tmpdir(), 'convo-build-'));
});
test.after(async (ctx) => {
  await rm(ctx.out, { recursive: true, force: true });
});

/** Every file under `dir` with what would show a write: inode (an atomic rename), size and mtime. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file);
    files.set(path.relative(dir, file), `${info.ino}:${info.size}:${info.mtimeMs}`);
  }
  return files;
}

/** Changes the hash the manifest recorded for one input: the build must see that file as edited. */
async function editRecordedInput(manifestFile: string, input: string): Promise<void> {
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  const part = manifest.inputs ? manifest : manifest.bundles;
  assert.ok(input in part.inputs, `${input} is an input of ${manifestFile}`);
  part.inputs[input] = 'edited';
  await writeFile(manifestFile, JSON.stringify(manifest));
}

test('the server build: a second one with nothing changed writes nothing, quickly; an edited input or a missing output builds again', async ({ out }) => {
  const first = await buildServer({ outdir: out, quiet: true });
  assert.ok(first.built);
  assert.ok(first.outputs.some((f) => f.endsWith('server.js')));
  const before = await snapshot(out);
  const second = await buildServer({ outdir: out, quiet: true });
  assert.is(second.built, false, 'nothing changed: nothing built');
  assert.ok(second.seconds < 0.5, `the check took ${second.seconds.toFixed(3)} s`);
  assert.equal(await snapshot(out), before, 'no file written, replaced or removed');
  assert.equal(second.outputs, first.outputs);

  await editRecordedInput(path.join(out, '.build-server.json'), 'app/main.ts');
  assert.ok((await buildServer({ outdir: out, quiet: true })).built, 'an edited input');
  await rm(path.join(out, 'token.js'));
  assert.ok((await buildServer({ outdir: out, quiet: true })).built, 'a missing output');
  assert.ok((await stat(path.join(out, 'token.js'))).size > 0);
});

test('the browser build: bundles and declarations built once; a second build writes nothing and reports the same sizes', async ({ out }) => {
  const first = await buildWeb({ outdir: out, quiet: true });
  assert.equal(first.map((b) => b.name), ['client.js', 'widget.js', 'convo-chat.js', 'agui.js']);
  assert.ok((await stat(path.join(out, 'types/protocol/client/index.d.ts'))).size > 0);
  assert.ok((await stat(path.join(out, 'types/protocol/agui-client/index.d.ts'))).size > 0);
  const before = await snapshot(out);
  const started = performance.now();
  const second = await buildWeb({ outdir: out, quiet: true });
  const ms = performance.now() - started;
  assert.ok(ms < 500, `the check took ${ms.toFixed(0)} ms`);
  assert.equal(second, first, 'sizes and inputs from the manifest');
  assert.equal(await snapshot(out), before, 'no file written, replaced or removed');

  // An edited input: built again (the same source gives the same bundles, which are then left as
  // they were; the manifest records the input's real hash again).
  const manifestFile = path.join(out, '.build-web.json');
  await editRecordedInput(manifestFile, 'protocol/client/index.ts');
  await rm(path.join(out, 'types/protocol/client/index.d.ts'));
  assert.equal(await buildWeb({ outdir: out, quiet: true, types: false }), first);
  const recorded = JSON.parse(await readFile(manifestFile, 'utf8'));
  assert.match(recorded.bundles.inputs['protocol/client/index.ts'], /^[\w-]{22}$/, 'rebuilt and recorded');
  assert.not.ok(await stat(path.join(out, 'types/protocol/client/index.d.ts')).catch(() => undefined), 'types: false leaves the declarations alone');
  await buildWeb({ outdir: out, quiet: true });
  assert.ok((await stat(path.join(out, 'types/protocol/client/index.d.ts'))).size > 0, 'a missing declaration is built again');
});

test('the two builds share a folder: the server build keeps the browser bundles and removes only its own stale chunks', async ({ out }) => {
  // The folder holds both builds from the tests above.
  const stale = path.join(out, 'worker-AAAAAAAA.js');
  await writeFile(stale, '// a chunk of an older server build\n');
  const manifestFile = path.join(out, '.build-server.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  manifest.outputs.push('worker-AAAAAAAA.js');
  manifest.inputs['app/main.ts'] = 'edited';
  await writeFile(manifestFile, JSON.stringify(manifest));
  assert.ok((await buildServer({ outdir: out, quiet: true })).built);
  assert.not.ok(await stat(stale).catch(() => undefined), 'the previous build\'s chunk is gone');
  for (const file of ['client.js', 'widget.js', 'convo-chat.js', 'agui.js', 'types/protocol/client/index.d.ts', '.build-web.json']) {
    assert.ok((await stat(path.join(out, file))).size > 0, `${file} kept`);
  }
  // And so the browser build after it has nothing to do.
  const before = await snapshot(out);
  await buildWeb({ outdir: out, quiet: true });
  assert.equal(await snapshot(out), before);
});

test('npm start\'s build step (scripts/build.mjs) on an up-to-date folder writes nothing and ends within a second', async ({ out }) => {
  const dir = path.join(out, 'cli');
  const first = run(process.execPath, ['scripts/build.mjs', '--outdir', dir], cleanEnv());
  assert.is(await first.exited(120_000), 0, first.stderr());
  const before = await snapshot(dir);
  const started = performance.now();
  const again = run(process.execPath, ['scripts/build.mjs', '--outdir', dir], cleanEnv());
  assert.is(await again.exited(30_000), 0, again.stderr());
  const ms = performance.now() - started;
  assert.match(again.stdout(), /server build up to date/);
  assert.match(again.stdout(), /browser bundles up to date/);
  assert.match(again.stdout(), /types\/\s+up to date/);
  assert.equal(await snapshot(dir), before, 'nothing written');
  assert.ok(ms < 1000, `${ms.toFixed(0)} ms, Node's start included`);
});

test.run();
