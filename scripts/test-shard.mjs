/**
 * One shard of the test suite (scripts/test.mjs starts it): runs the given test files one after
 * the other in this process with uvu, printing what uvu's own runner prints, and reports each
 * file's counts on file descriptor 3, one JSON object a line:
 *
 *   {"event":"start","file":"auth.test.ts"}
 *   {"event":"suite","file":"auth.test.ts","passed":9,"failed":0,"skipped":0}
 *   {"event":"end","file":"auth.test.ts","passed":9,"failed":0,"skipped":0,"duration_ms":812}
 *
 * The counts are uvu's: each suite's `run()` queues a function that runs the suite and returns
 * [errors, passed, skipped, total] (uvu/dist/index.mjs `runner`); uvu/run's `exec` only adds them
 * up and prints them, so this does what `exec` does, per file. A file whose process dies leaves
 * a "start" with no "end", which tells scripts/test.mjs which file it was.
 *
 *   node --import tsx scripts/test-shard.mjs auth.test.ts hardening.test.ts
 */
import { writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const files = process.argv.slice(2);
const report = (line) => {
  try {
    writeSync(3, `${JSON.stringify(line)}\n`);
  } catch {
    // Run by hand, without scripts/test.mjs: there is no descriptor 3, and the output says it all.
  }
};
const write = (text) => process.stdout.write(text);

// As uvu/run does: suites queue themselves (UVU_QUEUE[UVU_INDEX]) instead of running on their own.
// Set before anything imports uvu, which reads them when it loads.
globalThis.UVU_DEFER = 1;
globalThis.UVU_QUEUE = [];

let anyFailed = false;
for (const [index, file] of files.entries()) {
  globalThis.UVU_INDEX = index;
  globalThis.UVU_QUEUE.push([file]);
  report({ event: 'start', file });
  const started = performance.now();
  const counts = { passed: 0, failed: 0, skipped: 0 };
  if (index > 0) write('\n');
  write(`\x1b[1m\x1b[4m${file}\x1b[24m\x1b[22m\n`);
  try {
    await import(pathToFileURL(path.join(root, 'test', file)).href);
  } catch (error) {
    // uvu/run would stop the whole process here; this counts the file as one failure and goes on.
    counts.failed += 1;
    write(`\n  FAIL ${file} could not be loaded:\n    ${String(error?.stack ?? error).split('\n').join('\n    ')}\n`);
  }
  const group = globalThis.UVU_QUEUE[index];
  group.shift();
  for (const runSuite of group) {
    const [errors, passed, skipped, total] = await runSuite();
    const suite = { passed, failed: total - passed, skipped };
    if (typeof errors === 'string') write(`\n${errors}\n`);
    else if (passed < total) {
      // uvu's runner returns from its `finally`, which drops an error thrown by a before hook.
      write(`\n  ${total - passed} of ${total} tests did not run: a before or after hook threw (uvu does not say what)\n`);
    }
    report({ event: 'suite', file, ...suite });
    counts.passed += suite.passed;
    counts.failed += suite.failed;
    counts.skipped += suite.skipped;
  }
  if (group.length === 0 && counts.failed === 0) {
    counts.failed += 1;
    write(`\n  FAIL ${file} queued no suite (no .run() call?)\n`);
  }
  anyFailed ||= counts.failed > 0;
  report({ event: 'end', file, ...counts, duration_ms: Math.round(performance.now() - started) });
}
if (anyFailed) process.exitCode = 1;

// Every file has run and reported. Something a test left referenced (a bundler's service process
// waiting on its pipes, say) must not keep this shard, and with it the whole run, waiting for
// ever: if the process has not ended 2 s after the last file, it names what is still open and ends.
const linger = setTimeout(() => {
  const open = process._getActiveHandles().filter((handle) => handle !== process.stdout && handle !== process.stderr && handle !== process.stdin);
  const names = open.map((handle) => handle?.constructor?.name ?? typeof handle);
  process.stderr.write(`\n[test-shard] every file has run; ending with ${names.length} handle(s) still open: ${names.join(', ') || 'none listed (a worker thread or a pipe)'}\n`);
  process.exit(process.exitCode ?? 0);
}, 2_000);
linger.unref();
