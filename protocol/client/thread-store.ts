/**
 * The thread states a client holds, by thread id. Followed threads are always kept; of the others
 * only the `keep` most recently used (a long session would otherwise keep every event of every
 * thread it ever looked at).
 */
import { emptyThread, type ThreadState } from './thread-state.js';

export class ThreadStore {
  /** Least recently used first (a Map iterates in insertion order). */
  private readonly states = new Map<string, ThreadState>();

  constructor(private readonly keep: number) {}

  get(threadId: string): ThreadState | undefined {
    return this.states.get(threadId);
  }

  all(): ThreadState[] {
    return [...this.states.values()];
  }

  /** The thread's state, made (empty) when there is none. */
  ensure(threadId: string): ThreadState {
    let state = this.states.get(threadId);
    if (!state) this.set(threadId, (state = emptyThread(threadId)));
    return state;
  }

  set(threadId: string, state: ThreadState): void {
    this.states.delete(threadId);
    this.states.set(threadId, state);
    this.prune(threadId);
  }

  delete(threadId: string): boolean {
    return this.states.delete(threadId);
  }

  /** Marks a thread most recently used. */
  touch(threadId: string): void {
    const state = this.states.get(threadId);
    if (!state) return;
    this.states.delete(threadId);
    this.states.set(threadId, state);
  }

  /** Drops the least recently used states of threads not followed, past `keep` (never `spare`, the one just used). */
  prune(spare?: string): void {
    let unfollowed = 0;
    for (const state of this.states.values()) if (!state.following) unfollowed += 1;
    for (const [threadId, state] of this.states) {
      if (unfollowed <= this.keep) return;
      if (state.following || threadId === spare) continue;
      this.states.delete(threadId);
      unfollowed -= 1;
    }
  }
}
