/**
 * The shape of the runtime code (everything outside test/, loadtest/ and scripts/), checked so that it
 * cannot drift back: dependency-cruiser applies the import rules of .dependency-cruiser.cjs (no
 * cycle, server/ never imports workers/, workers/ events/ db/ never import server/, protocol/ stands
 * alone, only the entry points import app/), and the file budget holds (no file over 12 KB, at most
 * twelve over 8 KB; 1 KB = 1,000 bytes, as `wc -c` counts). The files over 8 KB are printed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cruise, type ICruiseOptions, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENTRY_POINTS } from '../scripts/build-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = path.join(root, '.dependency-cruiser.cjs');
const KB = 1000;
const HARD_LIMIT = 12 * KB;
const SOFT_LIMIT = 8 * KB;
const MOST_OVER_SOFT = 12;
const CODE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;

interface Ctx {
  options: ICruiseOptions;
  /** What is not runtime code, from the dependency-cruiser configuration (one definition). */
  notRuntime: RegExp;
}

const test = suite<Ctx>('structure');

test.before(async (ctx) => {
  ctx.options = await extractDepcruiseOptions(CONFIG);
  const exclude = ctx.options.exclude;
  const pattern = typeof exclude === 'object' && !Array.isArray(exclude) ? exclude.path : exclude;
  ctx.notRuntime = new RegExp(Array.isArray(pattern) ? pattern.join('|') : String(pattern));
});

/** Every import of the runtime code that breaks a rule, one line each. */
async function violations(options: ICruiseOptions): Promise<string[]> {
  const tsConfig = extractTSConfig(path.join(root, 'tsconfig.json'));
  const result = await cruise(['.'], { ...options, baseDir: root, outputType: 'json' }, {}, { tsConfig });
  const output = typeof result.output === 'string' ? JSON.parse(result.output) : result.output;
  return (output.summary.violations as IViolation[]).map((v) =>
    v.cycle && v.cycle.length > 0
      ? `${v.rule.name}: ${[v.from, ...v.cycle.map((step) => (typeof step === 'string' ? step : step.name))].join(' -> ')}`
      : `${v.rule.name}: ${v.from} -> ${v.to}`,
  );
}

/** Runtime code files of the working tree (tracked or new, not ignored) with their sizes, largest first. */
function runtimeFiles(notRuntime: RegExp): Array<{ file: string; bytes: number }> {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' });
  return listed
    .split('\0')
    .filter((file) => file && CODE.test(file) && !notRuntime.test(file))
    .flatMap((file) => {
      try {
        return [{ file, bytes: statSync(path.join(root, file)).size }];
      } catch {
        return []; // deleted in the working tree, not yet in the index
      }
    })
    .sort((a, b) => b.bytes - a.bytes || a.file.localeCompare(b.file));
}

test('the import rules hold across the runtime code', async (ctx) => {
  const broken = await violations(ctx.options);
  assert.ok(broken.length === 0, `${broken.length} imports break the rules of .dependency-cruiser.cjs:\n  ${broken.join('\n  ')}`);
});

test('every program the build makes may import app/ (the rule and the build name the same entry points)', async (ctx) => {
  const rule = ctx.options.ruleSet?.forbidden?.find((r) => r.name === 'app-is-the-root');
  assert.ok(rule, 'the app-is-the-root rule is configured');
  const allowed = new RegExp(String((rule.from as { pathNot?: string }).pathNot));
  for (const entry of Object.values(ENTRY_POINTS)) assert.ok(allowed.test(entry), `${entry} is an entry point the rule does not let import app/`);
  assert.not.ok(allowed.test('server/gateway.ts'), 'the rule lets ordinary server code import app/');
});

test('the file budget: no runtime file over 12 KB, at most twelve over 8 KB', (ctx) => {
  const files = runtimeFiles(ctx.notRuntime);
  assert.ok(files.length > 50, `found the runtime files (${files.length})`);
  const overSoft = files.filter((f) => f.bytes > SOFT_LIMIT);
  const overHard = overSoft.filter((f) => f.bytes > HARD_LIMIT);
  const width = Math.max(...overSoft.map((f) => f.file.length), 4);
  process.stdout.write(
    `\n  runtime files over 8 KB: ${overSoft.length} (at most ${MOST_OVER_SOFT}), over 12 KB: ${overHard.length} (none allowed)\n` +
      overSoft.map((f) => `    ${f.file.padEnd(width)}  ${(f.bytes / KB).toFixed(1).padStart(5)} KB${f.bytes > HARD_LIMIT ? '  over 12 KB' : ''}\n`).join(''),
  );
  assert.ok(overHard.length === 0, `runtime files over 12 KB: ${overHard.map((f) => `${f.file} (${f.bytes} bytes)`).join(', ')}`);
  assert.ok(overSoft.length <= MOST_OVER_SOFT, `${overSoft.length} runtime files over 8 KB, at most ${MOST_OVER_SOFT} allowed`);
});

test.run();
