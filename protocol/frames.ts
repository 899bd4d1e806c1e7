/**
 * TypeScript types of every v1 frame. Each type has a JSON Schema beside it in `schemas.ts`,
 * checked against it by tsc (`schemaOf<T>()`, typed-schema.ts): a field added to one and not the
 * other does not compile. The tests also validate every frame the server sends against the schemas.
 */
import type { ErrorCode, PROTOCOL, RunErrorCode } from './codes.js';

// ---- client → server ---------------------------------------------------------------------------

export interface MessageSendPayload {
  content: string;
  thread_id?: string;
  agent_id?: string;
  /** Idempotency key: the same value on the same thread yields the same ack and one run. */
  client_message_id?: string;
  /** What to do when a run is active on the thread; defaults to the agent's busy_policy. */
  on_busy?: BusyPolicy;
}
export type BusyPolicy = 'enqueue' | 'reject' | 'interrupt';
export interface ThreadCreatePayload { title?: string; agent_id?: string }
export interface ThreadListPayload { cursor?: string; limit?: number; archived?: boolean }
export interface ThreadGetPayload { thread_id: string }
export interface ThreadHistoryPayload { thread_id: string; before_seq?: number; limit?: number }
export interface ThreadUpdatePayload { thread_id: string; title?: string; archived?: boolean }
export interface ThreadDeletePayload { thread_id: string }
export interface SearchPayload { q: string; limit?: number }
export interface ThreadSubscribePayload { thread_id: string; after_seq?: number }
export interface ThreadUnsubscribePayload { thread_id: string }
export interface RunCancelPayload { run_id: string }
/** The thread owner's answer to an `approval_requested`: the call runs (approved) or the model is told no. */
export interface ToolApprovePayload { run_id: string; tool_call_id: string; approved: boolean; reason?: string }
export interface AuthRefreshPayload { token: string }
export type PingPayload = Record<string, never>;

export interface ClientPayloads {
  'message.send': MessageSendPayload;
  'thread.subscribe': ThreadSubscribePayload;
  'thread.unsubscribe': ThreadUnsubscribePayload;
  'run.cancel': RunCancelPayload;
  'tool.approve': ToolApprovePayload;
  'auth.refresh': AuthRefreshPayload;
  ping: PingPayload;
  'thread.create': ThreadCreatePayload;
  'thread.list': ThreadListPayload;
  'thread.get': ThreadGetPayload;
  'thread.history': ThreadHistoryPayload;
  'thread.update': ThreadUpdatePayload;
  'thread.delete': ThreadDeletePayload;
  search: SearchPayload;
}
export type ClientFrameType = keyof ClientPayloads;
export interface ClientFrame<T extends ClientFrameType = ClientFrameType> {
  type: T;
  id?: string;
  payload: ClientPayloads[T];
}

// ---- server → client ---------------------------------------------------------------------------

export interface SessionReadyPayload {
  connection_id: string;
  user_id: string;
  workspace_id: string;
  protocol: typeof PROTOCOL;
  server_time: string;
  token_expires_at: string;
}
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  /** Whether the same request may succeed later unchanged (see protocol/codes.ts). */
  retryable: boolean;
  retry_after_ms?: number;
  /** `seq_out_of_range`: the thread's newest seq. */
  last_seq?: number;
}

export interface MessageSendResult { thread_id: string; message_id: string; run_id: string; deduplicated?: boolean }
export interface ThreadSubscribeResult { thread_id: string; last_seq: number }

export type Role = 'user' | 'assistant' | 'tool' | 'system';
export interface MessageView { id: string; role: Role; content: string; run_id?: string | null; created_at?: string }
export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens?: number }
export type RunStatus = 'queued' | 'running' | 'completed' | 'cancelled' | 'failed';
/** How a waited-on tool call was decided (`approval_resolved.status`). */
export type ApprovalStatus = 'approved' | 'denied' | 'expired' | 'cancelled';
/** A tool call the run waits on: a person's approval, or a client tool's result. */
export interface ToolCallRequest {
  tool_call_id: string;
  tool_name: string;
  /** The call's arguments as the model gave them (decoded JSON; the raw text if it was not JSON). */
  arguments: unknown;
  /** When the wait ends unanswered: the model is told the request expired. */
  expires_at: string;
}

/** Fields every thread event carries. `seq` is per thread, from 1, without gaps. */
export interface EventBase { thread_id: string; run_id?: string; seq: number; timestamp: string }

export interface EventPayloads {
  message_created: { message: MessageView };
  agent_started: { agent_id: string; agent_name: string };
  /**
   * With `restarted: true`, a new attempt took the run over from one that died: the text streamed
   * so far is void, and the run's text restarts from the deltas carrying `message_id`.
   */
  agent_thinking: { attempt?: number; message_id?: string; restarted?: boolean };
  message_delta: { message_id: string; delta: string };
  tool_executing: { tool_call_id: string; name: string; arguments: unknown };
  tool_completed: { tool_call_id: string; name: string; result: string; is_error: boolean; duration_ms: number };
  /** The run waits (holding no worker) for the thread owner to answer `tool.approve` before the call runs. */
  approval_requested: ToolCallRequest;
  /** The decision on an `approval_requested`, stored when it was made (or the request expired, or the run was cancelled). */
  approval_resolved: { tool_call_id: string; tool_name: string; status: ApprovalStatus; reason?: string };
  /** The model called a tool the client offered; the run waits for the client's result (stored as tool_completed). */
  client_tool_requested: ToolCallRequest;
  agent_completed: {
    status: Exclude<RunStatus, 'queued' | 'running'>;
    message: MessageView;
    usage?: Usage;
    error?: { code: RunErrorCode; message: string };
  };
}
export type EventType = keyof EventPayloads;
export const EVENT_TYPES = [
  'message_created', 'agent_started', 'agent_thinking', 'message_delta',
  'tool_executing', 'tool_completed', 'approval_requested', 'approval_resolved', 'client_tool_requested', 'agent_completed',
] as const satisfies readonly EventType[];

/** What a producer hands to the event log; seq and timestamp are assigned by the store. */
export type EventDraft<T extends EventType = EventType> = { type: T; run_id?: string; payload: EventPayloads[T] };
/** A stored thread event as sent; a union over the types, so `type` narrows `payload`. */
export type ThreadEvent<T extends EventType = EventType> = { [K in T]: { type: K; payload: EventBase & EventPayloads[K] } }[T];

export interface ServerPayloads {
  'session.ready': SessionReadyPayload;
  ack: Record<string, unknown>;
  error: ErrorPayload;
  'auth.expiring': { expires_at: string };
  pong: Record<string, never>;
  /**
   * A thread this socket followed was deleted (by any of the owner's sockets or REST): the socket
   * no longer follows it, and a run that was streaming on it has ended. Not a thread event: it has
   * no seq (the thread's log is gone with it).
   */
  thread_deleted: { thread_id: string; timestamp: string };
}
export type ServerFrame =
  | { [K in keyof ServerPayloads]: { type: K; id?: string; payload: ServerPayloads[K] } }[keyof ServerPayloads]
  | ThreadEvent;
