/**
 * The per-thread state a client keeps, built only from the thread's events: messages with their
 * streaming text, each run's status and tool activity. Events are applied in seq order; one whose
 * seq was already applied is a duplicate and changes nothing.
 */
import type { EventPayloads, EventType, MessageView, Role, RunStatus, ThreadEvent, Usage } from '../frames.js';
import type { RunErrorCode } from '../codes.js';

export interface ToolActivity {
  toolCallId: string;
  name: string;
  arguments: unknown;
  /**
   * `error`: the tool failed or timed out (its result says why); the run goes on. `abandoned`: no
   * result will come (the attempt that ran it died and a restarted one took over, or the run ended).
   */
  status: 'running' | 'completed' | 'error' | 'abandoned';
  result?: string;
  durationMs?: number;
}

export interface RunView {
  runId: string;
  status: RunStatus;
  agentId?: string;
  agentName?: string;
  /** The model is working and no text is streaming yet (or it resumed after a tool call). */
  thinking: boolean;
  /** The assistant message this run's text goes to (changes when a restarted attempt takes over). */
  messageId?: string;
  attempt?: number;
  tools: ToolActivity[];
  error?: { code: RunErrorCode; message: string };
  usage?: Usage;
}

export interface ChatMessage {
  id: string;
  role: Role;
  content: string;
  runId?: string;
  createdAt?: string;
  /** The seq of the event that first showed this message (messages are in this order). */
  seq: number;
  /** Text is still arriving (an assistant message before its agent_completed). */
  streaming: boolean;
  /** For an assistant message: how its run ended, once it has. */
  status?: Exclude<RunStatus, 'queued' | 'running'>;
}

export interface ThreadState {
  threadId: string;
  /** The highest seq applied; a resume asks for events after it. */
  lastSeq: number;
  /** The lowest seq held (0: none yet). Older events come from `history`. */
  firstSeq: number;
  /** Whether older events exist before `firstSeq` (unknown until a history page says). */
  hasOlder: boolean;
  /** Whether this client follows the thread (resumed after every reconnect). */
  following: boolean;
  messages: ChatMessage[];
  runs: Record<string, RunView>;
  /** The run currently queued or running, if any (the newest one). */
  activeRunId?: string;
  /** Every event held, in seq order: the state is a fold over them. */
  events: ThreadEvent[];
}

export function emptyThread(threadId: string, afterSeq = 0): ThreadState {
  return {
    threadId, lastSeq: afterSeq, firstSeq: afterSeq > 0 ? afterSeq + 1 : 0, hasOlder: afterSeq > 0,
    following: false, messages: [], runs: {}, events: [],
  };
}

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

type Reducers = { [T in EventType]: (state: ThreadState, payload: ThreadEvent<T>['payload']) => void };

const reducers: Reducers = {
  message_created(state, p) {
    upsertMessage(state, p.message, p.seq);
    if (p.message.role === 'user' && p.run_id) {
      state.runs[p.run_id] ??= { runId: p.run_id, status: 'queued', thinking: false, tools: [] };
      state.activeRunId = p.run_id;
    }
  },
  agent_started(state, p) {
    const run = runOf(state, p.run_id);
    run.status = 'running';
    run.agentId = p.agent_id;
    run.agentName = p.agent_name;
  },
  agent_thinking(state, p) {
    const run = runOf(state, p.run_id);
    run.status = 'running';
    run.thinking = true;
    if (p.attempt !== undefined) run.attempt = p.attempt;
    if (p.restarted) {
      // A new attempt took over: the text streamed by the one that died is void, and a tool it
      // had running will never report back.
      state.messages = state.messages.filter((m) => !(m.role === 'assistant' && m.runId === run.runId));
      abandonTools(run);
    }
    if (p.message_id) run.messageId = p.message_id;
  },
  message_delta(state, p) {
    const run = runOf(state, p.run_id);
    run.thinking = false;
    run.messageId = p.message_id;
    let message = messageById(state, p.message_id);
    if (!message) {
      message = { id: p.message_id, role: 'assistant', content: '', runId: run.runId, createdAt: p.timestamp, seq: p.seq, streaming: true };
      state.messages.push(message);
    }
    message.content += p.delta;
  },
  tool_executing(state, p) {
    const run = runOf(state, p.run_id);
    run.thinking = false;
    run.tools.push({ toolCallId: p.tool_call_id, name: p.name, arguments: p.arguments, status: 'running' });
  },
  tool_completed(state, p) {
    const run = runOf(state, p.run_id);
    let tool = run.tools.find((t) => t.toolCallId === p.tool_call_id && t.status === 'running');
    if (!tool) run.tools.push((tool = { toolCallId: p.tool_call_id, name: p.name, arguments: undefined, status: 'running' }));
    tool.status = p.is_error ? 'error' : 'completed';
    tool.result = p.result;
    tool.durationMs = p.duration_ms;
    // The model reads the result next.
    run.thinking = true;
  },
  agent_completed(state, p) {
    const run = runOf(state, p.run_id);
    run.status = p.status;
    run.thinking = false;
    run.messageId = p.message.id;
    if (p.error) run.error = p.error;
    if (p.usage) run.usage = p.usage;
    abandonTools(run);
    // The stored message is the final word on the text (the deltas joined equal it).
    const message = upsertMessage(state, { ...p.message, run_id: p.run_id ?? p.message.run_id }, p.seq);
    message.status = p.status;
    if (state.activeRunId === run.runId) state.activeRunId = undefined;
  },
};

function reduce(state: ThreadState, event: ThreadEvent): void {
  const reducer = reducers[event.type] as ((s: ThreadState, p: EventPayloads[EventType] & ThreadEvent['payload']) => void) | undefined;
  // An event type this client does not know (a newer server): kept in the log, nothing to show.
  reducer?.(state, event.payload as never);
}

function runOf(state: ThreadState, runId: string | undefined): RunView {
  const id = runId ?? '';
  let run = state.runs[id];
  if (!run) state.runs[id] = run = { runId: id, status: 'running', thinking: false, tools: [] };
  if (run.status === 'queued' || run.status === 'running') state.activeRunId = id;
  return run;
}

/** Tools still running when their attempt or run ended: no result will come. */
function abandonTools(run: RunView): void {
  for (const tool of run.tools) if (tool.status === 'running') tool.status = 'abandoned';
}

/** The message with this id; searched from the newest, where streamed text almost always lands. */
function messageById(state: ThreadState, id: string): ChatMessage | undefined {
  for (let i = state.messages.length - 1; i >= 0; i--) if (state.messages[i]!.id === id) return state.messages[i];
  return undefined;
}

/** A stored message (created, or a run's final answer): no longer streaming. */
function upsertMessage(state: ThreadState, view: MessageView, seq: number): ChatMessage {
  let message = messageById(state, view.id);
  if (!message) {
    message = { id: view.id, role: view.role, content: view.content, seq, streaming: false };
    state.messages.push(message);
  }
  message.content = view.content;
  message.streaming = false;
  if (view.run_id) message.runId = view.run_id;
  if (view.created_at) message.createdAt = view.created_at;
  return message;
}
