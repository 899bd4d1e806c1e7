/**
 * WORKER_CONCURRENCY over several BullMQ Workers in one process (one per turn queue partition):
 * at most `size` turns run at once, and a full process stops taking jobs that another process
 * could run.
 *
 * Each Worker keeps one fetch going: its concurrency is what it holds (running, or waiting for a
 * turn here) plus one, so jobs are taken one at a time and a partition with all the work still
 * fills the process. While the process is full, a Worker that already has a job waiting here
 * fetches no more: a full process holds `size` running turns and at most one waiting job per
 * partition (started, FIFO, as soon as a turn ends, its lock renewed by BullMQ meanwhile); the
 * rest stay in Redis for other processes. A BullMQ Worker whose concurrency is reached waits for
 * one of its own jobs to end before it looks again, so a rise is followed by `wake` (its main loop
 * told to look again now): without it, a partition's next job waited for that partition's running
 * turn to end while the process had a free slot.
 */
export class ProcessSlots {
  private free: number;
  private readonly queue: Array<{ index: number; start: () => void }> = [];
  private readonly workers: Array<{ worker: { concurrency: number }; wake: () => void }> = [];
  /** Per Worker: jobs in the process (running or waiting), and of those waiting. */
  private readonly held: number[] = [];
  private readonly waiting: number[] = [];

  constructor(size: number) {
    this.free = size;
  }

  /**
   * Adds a Worker whose concurrency this sets, and how to make it look for a job again after a
   * rise; its index is what it passes to enter/leave.
   */
  add(worker: { concurrency: number }, wake: () => void): number {
    worker.concurrency = 1;
    this.workers.push({ worker, wake });
    this.held.push(0);
    this.waiting.push(0);
    return this.workers.length - 1;
  }

  /** A job of Worker `index` is in the process: resolves when it may run. */
  enter(index: number): Promise<void> {
    this.held[index]!++;
    if (this.free > 0) {
      this.free--;
      this.adjust();
      return Promise.resolve();
    }
    this.waiting[index]!++;
    this.adjust();
    return new Promise((start) => this.queue.push({ index, start }));
  }

  /** The job of Worker `index` that entered has ended. */
  leave(index: number): void {
    this.held[index]!--;
    const next = this.queue.shift();
    if (next) {
      this.waiting[next.index]!--;
      next.start();
    } else {
      this.free++;
    }
    this.adjust();
  }

  private adjust(): void {
    this.workers.forEach(({ worker, wake }, index) => {
      const target = this.free === 0 && this.waiting[index]! > 0 ? Math.max(1, this.held[index]!) : this.held[index]! + 1;
      if (worker.concurrency === target) return;
      const rise = target > worker.concurrency;
      worker.concurrency = target;
      if (rise) wake();
    });
  }
}
