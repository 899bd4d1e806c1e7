/** Kysely table types. Column names match the wire protocol's snake_case. */
import type { ColumnType, Generated, Insertable, JSONColumnType, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

export interface AgentsTable {
  id: string;
  /** null: visible to every workspace (the seeded default agent). */
  workspace_id: string | null;
  name: string;
  /** For the people who pick an agent; everyone in the workspace sees it. */
  description: ColumnType<string, string | undefined, string>;
  model: string | null;
  system_prompt: string;
  temperature: number | null;
  tools: JSONColumnType<string[]>;
  max_tool_iterations: number;
  busy_policy: 'enqueue' | 'reject' | 'interrupt';
  /** Tools (of `tools`) whose calls wait for the thread owner's approval before they run. */
  require_approval: ColumnType<string[], string | undefined, string>;
  /** How long an approval (or a client tool's result) is waited for, in seconds (1..604800). */
  approval_timeout_s: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
  /** Soft-deleted: hidden and unusable for new threads; existing threads keep it. */
  deleted_at: Date | null;
}

export interface ThreadsTable {
  id: string;
  workspace_id: string;
  user_id: string;
  agent_id: string;
  title: string | null;
  /** The seq of the newest event; a batch of n events bumps it by n in the statement that stores them. */
  last_seq: Generated<number>;
  archived_at: Date | null;
  created_at: CreatedAt;
  /** Last activity (the list order): when a message was last stored, or the thread was changed. */
  updated_at: UpdatedAt;
}

export interface MessagesTable {
  id: string;
  thread_id: string;
  run_id: string | null;
  role: 'user' | 'assistant' | 'tool' | 'system';
  content: string;
  /** assistant rows that asked for tools: the OpenAI `tool_calls` array. */
  tool_calls: JSONColumnType<ToolCallRecord[]> | null;
  /** tool rows: which call this result answers. */
  tool_call_id: string | null;
  client_message_id: string | null;
  created_at: CreatedAt;
  /** Generated from content for full-text search; never written. */
  search_tsv: ColumnType<string, never, never>;
}

export interface ToolCallRecord {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type RunStatus = 'queued' | 'running' | 'completed' | 'cancelled' | 'failed';

/** How a run ended: what is stored on its row with its agent_completed. */
export interface RunOutcome {
  status: Extract<RunStatus, 'completed' | 'cancelled' | 'failed'>;
  error?: { code: string; message: string };
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens?: number };
}

export interface RunsTable {
  id: string;
  thread_id: string;
  workspace_id: string;
  user_id: string;
  agent_id: string;
  status: RunStatus;
  /** Incremented each time a worker claims the run; every event write is fenced by it. */
  attempt: Generated<number>;
  user_message_id: string;
  assistant_message_id: string | null;
  error: JSONColumnType<{ code: string; message: string }> | null;
  usage: JSONColumnType<{ prompt_tokens: number; completion_tokens: number; total_tokens?: number }> | null;
  created_at: CreatedAt;
  started_at: Date | null;
  /** Refreshed by the worker holding a running run; a stale one means the worker is gone. */
  heartbeat_at: Date | null;
  finished_at: Date | null;
  /**
   * Set while the run waits for a person or a client (a pending row in tool_waits, or answered
   * ones not yet resumed): no worker holds it and no job is queued for it until its answer.
   */
  waiting_since: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** Tools a frontend offered for this run (AG-UI `RunAgentInput.tools`); null when none. */
  client_tools: ColumnType<ClientToolDef[] | null, string | null | undefined, string | null>;
  /** The queue job that claimed the current attempt (or resumed it from a park); null before the first claim. */
  claimed_by: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A tool a frontend offers for one run: called by the model, answered by the client. */
export interface ClientToolDef {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export type ToolWaitKind = 'approval' | 'client';
export type ToolWaitStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'answered';

/** A tool call a waiting run waits on (migration 0008): an approval, or a client tool's result. */
export interface ToolWaitsTable {
  run_id: string;
  tool_call_id: string;
  thread_id: string;
  kind: ToolWaitKind;
  tool_name: string;
  /** The call's arguments as the model gave them (decoded JSON, or the raw text). */
  arguments: ColumnType<unknown, string, string>;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  status: ColumnType<ToolWaitStatus, ToolWaitStatus | undefined, ToolWaitStatus>;
  /** A denial's reason, as the person gave it. */
  reason: string | null;
  /** A client tool's result. */
  result: string | null;
  answered_at: Date | null;
  created_at: CreatedAt;
}

export interface EventsTable {
  thread_id: string;
  seq: number;
  run_id: string | null;
  type: string;
  /** The wire payload exactly as sent, seq and timestamp included. */
  payload: JSONColumnType<Record<string, unknown>>;
  created_at: CreatedAt;
}

/** Ids of event-log writes (migration 0007); `void`: given up for lost by its writer, so a late copy fails. */
export interface EventWritesTable {
  id: string;
  void: Generated<boolean>;
}

export interface Database {
  agents: AgentsTable;
  threads: ThreadsTable;
  messages: MessagesTable;
  runs: RunsTable;
  events: EventsTable;
  event_writes: EventWritesTable;
  tool_waits: ToolWaitsTable;
}

export type Agent = Selectable<AgentsTable>;
export type Thread = Selectable<ThreadsTable>;
export type Message = Selectable<MessagesTable>;
export type NewMessage = Insertable<MessagesTable>;
export type Run = Selectable<RunsTable>;
export type ToolWait = Selectable<ToolWaitsTable>;
