/**
 * Clean-up that runs however the benchmark ends: normally, on an error, or on Ctrl-C / SIGTERM.
 * Steps run newest first; each runs once; a failing step does not stop the others. Synchronous
 * fallbacks (kill a pid, stop a cluster) run from the process 'exit' hook if the async ones did not.
 */
type Step = { name: string; run: () => Promise<void>; sync?: () => void; done: boolean };

const steps: Step[] = [];
let running: Promise<string[]> | undefined;

export function onCleanup(name: string, run: () => Promise<void>, sync?: () => void): void {
  steps.push({ name, run, sync, done: false });
}

/** Runs every step not yet run; returns the failures. Safe to call twice. */
export function cleanupAll(): Promise<string[]> {
  running ??= (async () => {
    const failures: string[] = [];
    for (const step of [...steps].reverse()) {
      if (step.done) continue;
      step.done = true;
      try {
        await step.run();
      } catch (error) {
        failures.push(`${step.name}: ${(error as Error)?.message ?? error}`);
        try {
          step.sync?.();
        } catch {
          // the exit hook has nothing better to offer
        }
      }
    }
    return failures;
  })();
  return running;
}

let installed = false;
/** A signal started the clean-up: the errors that follow from it (children gone) are not news. */
export let interrupted = false;

/** Ctrl-C and SIGTERM clean up, then exit 130/143; the exit hook covers a crash. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      interrupted = true;
      process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
      const hardStop = setTimeout(() => process.exit(code), 30_000);
      hardStop.unref();
      void cleanupAll().finally(() => process.exit(code));
    });
  }
  process.on('exit', () => {
    for (const step of [...steps].reverse()) {
      if (step.done || !step.sync) continue;
      try {
        step.sync();
      } catch {
        // best effort while exiting
      }
    }
  });
}
