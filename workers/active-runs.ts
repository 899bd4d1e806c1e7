/**
 * The runs this worker process holds right now, by run id: the one place that adds, removes and
 * signals them. The turn registers a run when its claim succeeds and releases it when its job
 * ends; the worker cancels one (run.cancel reaches every worker), beats their heartbeats, asks
 * whether a stale-looking run is its own, and stops them all at shutdown.
 */
import type { WriteFence } from '../db/events.repository.js';

/** A run in flight in this worker. */
export interface RunHandle {
  readonly fence: WriteFence;
  /** Aborted by the user (run.cancel, an interrupting message): the run ends `cancelled`. */
  readonly cancel: AbortController;
  /**
   * Aborted when this worker shuts down past its grace period. With `handBack`, the run is handed
   * back for another worker to take over (no agent_completed is written); without, it ends
   * `failed` with `worker_lost`.
   */
  readonly stop: AbortController;
  handBack: boolean;
}

export class ActiveRuns {
  private readonly runs = new Map<string, RunHandle>();

  /** Runs in flight. */
  get count(): number {
    return this.runs.size;
  }

  /** A run this worker now drives under `fence`; its handle carries the signals that stop it. */
  register(fence: WriteFence): RunHandle {
    const handle: RunHandle = { fence, cancel: new AbortController(), stop: new AbortController(), handBack: false };
    this.runs.set(fence.runId, handle);
    return handle;
  }

  /** The run's job has ended (finished, parked, handed back, fenced off). A newer handle of the run stays. */
  release(handle: RunHandle): void {
    if (this.runs.get(handle.fence.runId) === handle) this.runs.delete(handle.fence.runId);
  }

  /** run.cancel: aborts the run if this worker holds it (every worker hears every cancel). */
  cancel(runId: string, reason: Error): void {
    this.runs.get(runId)?.cancel.abort(reason);
  }

  /** True when this worker drives the run under that attempt (a slow heartbeat, not a dead worker). */
  holds(runId: string, attempt: number): boolean {
    return this.runs.get(runId)?.fence.attempt === attempt;
  }

  /** The fences of every run held: what the heartbeat refreshes. */
  fences(): WriteFence[] {
    return [...this.runs.values()].map((run) => run.fence);
  }

  /** Shutdown past the grace period: stops every run, handing each back or failing it. */
  stopAll(handBack: boolean, reason: Error): void {
    for (const run of this.runs.values()) {
      run.handBack = handBack;
      run.stop.abort(reason);
    }
  }
}
