/**
 * TypeScript types of the REST-only requests (bodies and query strings that no frame carries).
 * Their JSON Schemas are in `resources.ts` and server/rest/*.routes.ts, checked against these.
 */
import type { BusyPolicy, MessageSendPayload, ThreadUpdatePayload, ToolApprovePayload } from './frames.js';

/** `POST /v1/agents`. */
export interface AgentCreateRequest {
  name: string;
  description?: string;
  model?: string;
  system_prompt?: string;
  temperature?: number;
  tools?: string[];
  max_tool_iterations?: number;
  busy_policy?: BusyPolicy;
  /** Tools (of `tools`) whose calls wait for the thread owner's approval. @defaultValue [] */
  require_approval?: string[];
  /** Seconds an approval is waited for before the model is told it expired. @defaultValue 3600 */
  approval_timeout_s?: number;
}

/** `PATCH /v1/agents/{id}`: the fields to change; `null` clears model or temperature. */
export interface AgentUpdateRequest {
  name?: string;
  description?: string;
  model?: string | null;
  system_prompt?: string;
  temperature?: number | null;
  tools?: string[];
  max_tool_iterations?: number;
  busy_policy?: BusyPolicy;
  require_approval?: string[];
  approval_timeout_s?: number;
}

/** `PATCH /v1/threads/{id}`: `thread.update` without `thread_id` (it is in the path). */
export type ThreadPatchRequest = Omit<ThreadUpdatePayload, 'thread_id'>;

/** `POST /v1/threads/{id}/messages`: `message.send` without `thread_id` and `agent_id`. */
export type MessagePostRequest = Omit<MessageSendPayload, 'thread_id' | 'agent_id'>;

/** `POST /v1/runs/{id}/approvals`: `tool.approve` without `run_id` (it is in the path). */
export type ApprovalPostRequest = Omit<ToolApprovePayload, 'run_id'>;
