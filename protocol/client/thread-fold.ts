/**
 * Where events enter a thread's state: live ones in seq order (one whose seq was already applied
 * is a duplicate and changes nothing), and pages of older history in front of what is held, so
 * that the state always reads as if every event had arrived live.
 */
import type { ThreadEvent } from '../frames.js';
import { reduce } from './thread-events.js';
import { emptyThread, type ThreadState } from './thread-state.js';

/** Applies one live event; false when it was a duplicate (seq already applied). */
export function applyEvent(state: ThreadState, event: ThreadEvent): boolean {
  const seq = event.payload.seq;
  if (seq <= state.lastSeq) return false;
  state.lastSeq = seq;
  if (state.firstSeq === 0) state.firstSeq = seq;
  state.events.push(event);
  reduce(state, event);
  return true;
}

/**
 * Adds a page of older events (from `thread.history`) in front of what is held, so that the state
 * reads as if every event had arrived live, in seq order. Runs are independent of one another, so
 * only the page is folded, together with the held events of a run that crosses the page boundary
 * (at most a turn or two): a page costs its own size, not the size of the whole log.
 */
export function prependEvents(state: ThreadState, events: ThreadEvent[], hasOlder: boolean): void {
  const heldSeqs = new Set(state.events.map((e) => e.payload.seq));
  const older = events.filter((e) => !heldSeqs.has(e.payload.seq)).sort((a, b) => a.payload.seq - b.payload.seq);
  const all = older.length === 0 ? state.events : [...older, ...state.events].sort((a, b) => a.payload.seq - b.payload.seq);
  const first = state.events[0]?.payload.seq;
  if (older.length > 0 && first !== undefined && older[older.length - 1]!.payload.seq > first) {
    // The page reaches in between held events (a gap the held log had): fold everything again.
    refold(state, all);
  } else if (older.length > 0) {
    prependFold(state, older);
  }
  state.events = all;
  if (all.length > 0) {
    state.firstSeq = all[0]!.payload.seq;
    state.lastSeq = Math.max(state.lastSeq, all[all.length - 1]!.payload.seq);
  }
  state.hasOlder = hasOlder;
}

function refold(state: ThreadState, events: ThreadEvent[]): void {
  state.messages = [];
  state.runs = {};
  state.activeRunId = undefined;
  for (const event of events) reduce(state, event);
}

/** Folds `older` (all before the held events) in front of the held state. */
function prependFold(state: ThreadState, older: ThreadEvent[]): void {
  const olderRuns = new Set(older.map((e) => e.payload.run_id).filter((id): id is string => id !== undefined));
  // Runs with events on both sides of the boundary are folded again whole, from the page on.
  const crossing = state.events.filter((e) => e.payload.run_id !== undefined && olderRuns.has(e.payload.run_id));
  const page = emptyThread(state.threadId);
  for (const event of older) reduce(page, event);
  for (const event of crossing) reduce(page, event);
  const refolded = new Set(crossing.map((e) => e.payload.seq));
  state.messages = [...page.messages, ...state.messages.filter((m) => !refolded.has(m.seq))].sort((a, b) => a.seq - b.seq);
  state.runs = { ...state.runs, ...page.runs };
  // The newest event that names a run decides which run is active; it is held, if any held event names one.
  if (!state.events.some((e) => e.payload.run_id !== undefined)) state.activeRunId = page.activeRunId;
}
