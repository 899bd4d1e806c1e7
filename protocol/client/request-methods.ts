/**
 * The request frames that change nothing the client holds, as typed methods: each one sends its
 * frame through `request` and resolves with the server's answer. The client is built in layers:
 * this, then the thread states kept in step (thread-following.ts), then ConversationClient
 * (conversation-client.ts) with the connection behind `request`.
 */
import type { ClientFrameType, ClientPayloads } from '../frames.js';
import type { CancelResult, SearchResult, ThreadListResult, ThreadView, ToolAnswerResult } from '../results.js';
import { Emitter } from './emitter.js';
import type { ClientEvents } from './types.js';

export abstract class RequestMethods extends Emitter<ClientEvents> {
  /**
   * Any request frame, answered by its ack payload (or rejected with a ConversationError).
   * `timeoutMs` counts from when the frame is written.
   */
  abstract request<R>(type: ClientFrameType, payload: ClientPayloads[ClientFrameType] | (() => ClientPayloads[ClientFrameType]), options?: { timeoutMs?: number; urgent?: boolean }): Promise<R>;

  /** Asks the worker to stop the run; it ends with `agent_completed` status `cancelled`. */
  cancel(runId: string): Promise<CancelResult> {
    return this.request('run.cancel', { run_id: runId });
  }

  /**
   * Answers the approval a waiting run asks for (its `pending`, kind `approval`): approved, the tool
   * runs; denied, the model is told so (with `reason`). A second answer is refused with `already_answered`.
   */
  approve(runId: string, toolCallId: string, approved: boolean, reason?: string): Promise<ToolAnswerResult> {
    return this.request('tool.approve', { run_id: runId, tool_call_id: toolCallId, approved, ...(reason !== undefined ? { reason } : {}) });
  }

  listThreads(options: { cursor?: string; limit?: number; archived?: boolean } = {}): Promise<ThreadListResult> {
    return this.request('thread.list', options);
  }

  createThread(options: { title?: string; agentId?: string } = {}): Promise<ThreadView> {
    return this.request('thread.create', {
      ...(options.title !== undefined ? { title: options.title } : {}),
      ...(options.agentId !== undefined ? { agent_id: options.agentId } : {}),
    });
  }

  getThread(threadId: string): Promise<ThreadView> {
    return this.request('thread.get', { thread_id: threadId });
  }

  updateThread(threadId: string, changes: { title?: string; archived?: boolean }): Promise<ThreadView> {
    return this.request('thread.update', { thread_id: threadId, ...changes });
  }

  search(q: string, options: { limit?: number } = {}): Promise<SearchResult> {
    return this.request('search', { q, ...options });
  }
}
