/**
 * The per-thread state a client keeps, built only from the thread's events: messages with their
 * streaming text, each run's status and tool activity. Its shape is here; events enter it in seq
 * order through thread-fold.ts, and what each event type changes is in thread-events.ts.
 */
import type { Role, RunStatus, ThreadEvent, Usage } from '../frames.js';
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

/**
 * A tool call a run waits on (its status is `waiting` meanwhile, and it holds no worker): an
 * approval the thread's owner gives with `client.approve(runId, toolCallId, approved, reason?)`,
 * or a result for a tool the client offered. Set by approval_requested / client_tool_requested,
 * cleared by approval_resolved / the call's tool_completed, or when the run ends.
 */
export interface PendingCall {
  kind: 'approval' | 'client';
  toolCallId: string;
  toolName: string;
  arguments: unknown;
  /** When it expires unanswered (the model is then told so and the run goes on). */
  expiresAt: string;
}

export interface RunView {
  runId: string;
  /** `waiting`: the run waits for `pending` to be answered. */
  status: RunStatus | 'waiting';
  pending?: PendingCall;
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
