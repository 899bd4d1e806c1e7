/**
 * TypeScript types of the REST-only requests (bodies and query strings that no frame carries).
 * Their JSON Schemas are in `resources.ts` and server/rest/*.routes.ts, checked against these.
 */
import type { BusyPolicy, MessageSendPayload, ThreadUpdatePayload } from './frames.js';

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
}

/** `PATCH /v1/threads/{id}`: `thread.update` without `thread_id` (it is in the path). */
export type ThreadPatchRequest = Omit<ThreadUpdatePayload, 'thread_id'>;

/** `POST /v1/threads/{id}/messages`: `message.send` without `thread_id` and `agent_id`. */
export type MessagePostRequest = Omit<MessageSendPayload, 'thread_id' | 'agent_id'>;
