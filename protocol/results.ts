/**
 * TypeScript types of the `ack` payloads (and REST bodies) a client reads. Their JSON Schemas are
 * `resultSchemas` in `resources.ts`; this file holds types only, so a browser bundle can import it
 * without pulling in a validator.
 */
import type { BusyPolicy, RunStatus, ThreadEvent, ToolCallRequest } from './frames.js';

export interface ThreadView {
  id: string;
  title: string | null;
  agent_id: string;
  last_seq: number;
  archived: boolean;
  created_at: string;
  updated_at: string;
}

export interface ThreadListResult { threads: ThreadView[]; next_cursor: string | null }
export interface ThreadDeletedResult { thread_id: string; deleted: true }

/** `thread.history`: stored events, each the frame exactly as it was sent. */
export interface HistoryResult { thread_id: string; events: ThreadEvent[]; has_more: boolean }

export interface SearchHit {
  thread_id: string;
  thread_title: string | null;
  message_id: string;
  role: 'user' | 'assistant';
  snippet: string;
  rank: number;
  created_at: string;
}
export interface SearchResult { results: SearchHit[] }

export interface CancelResult { run_id: string; status: Extract<RunStatus, 'cancelled'> | 'cancelling' }
export interface RefreshResult { token_expires_at: string }
export interface UnsubscribeResult { thread_id: string }
export interface TicketResult { ticket: string; expires_at: string }

/** An agent as the caller may see it; `system_prompt` only for workspace admins. */
export interface AgentView {
  id: string;
  /** null for the built-in agents. */
  workspace_id: string | null;
  name: string;
  description: string;
  model: string | null;
  system_prompt?: string;
  temperature: number | null;
  tools: string[];
  max_tool_iterations: number;
  busy_policy: BusyPolicy;
  /** Tools whose calls wait for the thread owner's approval (`approval_requested`). */
  require_approval: string[];
  /** Seconds an approval is waited for. */
  approval_timeout_s: number;
  created_at?: string;
  updated_at?: string;
}
export interface AgentListResult { agents: AgentView[] }
export interface AgentDeletedResult { agent_id: string; deleted: true }

/** A tool call a waiting run waits on: an approval (`tool.approve`) or a client tool's result. */
export interface PendingToolCall extends ToolCallRequest { kind: 'approval' | 'client' }

/** `GET /v1/runs/{id}`: `waiting` while the run waits for an answer, holding no worker. */
export interface RunInfo {
  id: string;
  thread_id: string;
  agent_id: string;
  status: RunStatus | 'waiting';
  created_at: string;
  finished_at: string | null;
  pending: PendingToolCall[];
}

/** The `ack` of `tool.approve` (and the body of `POST /v1/runs/{id}/approvals`). */
export interface ToolAnswerResult { run_id: string; tool_call_id: string; status: 'approved' | 'denied' | 'answered' }
