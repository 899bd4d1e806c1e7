/**
 * A worker's background task on a timer (the heartbeat, the sweep, pruning), made loud when it
 * keeps failing: every run is counted by result (`background_tasks_total`), a failure is logged at
 * warn, and the `LOUD_AFTER`th failure in a row at error, with what it puts at risk, once until
 * the task succeeds again (then at info). One quiet failure is a blip (a database restart); a task
 * that never succeeds must not hide behind a warning every few seconds.
 */
import type { Logger } from 'pino';
import { metrics } from '../metrics/index.js';
import type { BackgroundTask } from '../metrics/record.js';

/** Failures in a row after which a task's failure is an error. */
export const LOUD_AFTER = 3;

export interface TaskOptions {
  task: BackgroundTask;
  everyMs: number;
  log: Logger;
  /** What keeps failing puts at risk, for the error line (e.g. "other workers will take these runs over"). */
  risk: string;
  /** One run of the task; a throw is a failure. */
  run: () => Promise<unknown>;
}

export class BackgroundTimer {
  private failures = 0;
  private running?: Promise<void>;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: TaskOptions) {
    this.timer = setInterval(() => void this.runOnce(), options.everyMs);
    this.timer.unref();
  }

  /** Failures in a row so far (0 after a success). */
  get failing(): number {
    return this.failures;
  }

  /** Runs the task now (a run still in progress is not doubled: its promise is returned). */
  runOnce(): Promise<void> {
    this.running ??= this.attempt().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer and waits for a run in progress. Safe to call twice. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async attempt(): Promise<void> {
    const { task, log } = this.options;
    try {
      await this.options.run();
      metrics.backgroundTask(task, true);
      if (this.failures >= LOUD_AFTER) log.info({ task, failures: this.failures }, `${task} works again`);
      this.failures = 0;
    } catch (error) {
      metrics.backgroundTask(task, false);
      this.failures += 1;
      if (this.failures === LOUD_AFTER) {
        log.error({ err: error, task, failures: this.failures }, `${task} has failed ${this.failures} times in a row: ${this.options.risk}`);
      } else {
        log.warn({ err: error, task, failures: this.failures }, `${task} failed; will retry`);
      }
    }
  }
}
