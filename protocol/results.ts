/**
 * TypeScript types of the `ack` payloads (and REST bodies) a client reads. Their JSON Schemas are
 * `resultSchemas` in `resources.ts`; this file holds types only, so a browser bundle can import it
 * without pulling in a validator.
 */
import type { RunStatus } from './frames.js';

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

/** A stored event as `thread.history` returns it: the frame exactly as it was sent. */
export interface StoredEvent { type: string; payload: Record<string, unknown> & { seq: number; thread_id: string } }
export interface HistoryResult { thread_id: string; events: StoredEvent[]; has_more: boolean }

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
