/**
 * One connection's frames in the order they were sent: each task starts after every task queued
 * before it has finished, whatever the frames' types, so a `thread.unsubscribe` sent after a
 * `thread.subscribe` takes effect after it. A bounded number may wait (MAX_QUEUED_FRAMES).
 */
export class OrderedInbox {
  private readonly tasks: Array<() => Promise<void>> = [];
  private working = false;

  /** @param fail What a task that throws (a bug: tasks settle on their own errors) is handed to. */
  constructor(private readonly fail: (error: unknown) => void) {}

  /** Queues `task`; false (nothing queued) when `limit` tasks are already waiting. */
  enqueue(task: () => Promise<void>, limit: number): boolean {
    if (this.tasks.length >= limit) return false;
    this.tasks.push(task);
    if (!this.working) void this.work();
    return true;
  }

  private async work(): Promise<void> {
    this.working = true;
    try {
      for (let task = this.tasks.shift(); task; task = this.tasks.shift()) await task().catch(this.fail);
    } finally {
      this.working = false;
    }
  }
}
