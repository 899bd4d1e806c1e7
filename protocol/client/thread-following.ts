/**
 * The client's thread states, kept in step with the server. A followed thread gets its events
 * after the newest seq held, then live, and is resumed from there after every reconnect (a client
 * found ahead of the server starts the thread over); pages of history are folded in front of what
 * is held; a deleted thread is dropped. The states are held in thread-store.ts and folded by
 * thread-fold.ts. ConversationClient (conversation-client.ts) extends this with the connection
 * behind `request` and tells it when a session is ready and what arrives.
 */
import type { ThreadEvent, ThreadSubscribeResult } from '../frames.js';
import type { HistoryResult, UnsubscribeResult } from '../results.js';
import { ConversationError } from './errors.js';
import { RequestMethods } from './request-methods.js';
import { applyEvent, prependEvents } from './thread-fold.js';
import { emptyThread, type ThreadState } from './thread-state.js';
import { ThreadStore } from './thread-store.js';

export abstract class ThreadFollowing extends RequestMethods {
  private readonly threadStates: ThreadStore;

  constructor(keepThreads: number) {
    super();
    this.threadStates = new ThreadStore(keepThreads);
  }

  /** Every thread this client holds state for. */
  get threads(): ThreadState[] {
    return this.threadStates.all();
  }

  thread(threadId: string): ThreadState | undefined {
    return this.threadStates.get(threadId);
  }

  /**
   * Follows a thread: its events from `afterSeq` (default: the newest seq held, 0 for a thread not
   * held) and then live, resumed after every reconnect.
   */
  follow(threadId: string, options: { afterSeq?: number } = {}): Promise<ThreadSubscribeResult> {
    const held = this.threadStates.get(threadId);
    const state = !held || (options.afterSeq !== undefined && options.afterSeq < held.lastSeq) ? emptyThread(threadId, options.afterSeq ?? 0) : held;
    state.following = true;
    this.threadStates.set(threadId, state);
    return this.subscribe(threadId, false);
  }

  /**
   * Stops following. The state is kept for a return (pass `forget` to drop it now); only the
   * `keepThreads` most recently used states of threads not followed are kept.
   */
  unfollow(threadId: string, options: { forget?: boolean } = {}): Promise<UnsubscribeResult> {
    const state = this.threadStates.get(threadId);
    if (state) state.following = false;
    if (options.forget) this.threadStates.delete(threadId);
    this.threadStates.prune();
    return this.request('thread.unsubscribe', { thread_id: threadId });
  }

  /**
   * A page of stored events before `beforeSeq` (default: the oldest held, or the newest events),
   * folded into the thread's state.
   */
  async history(threadId: string, options: { beforeSeq?: number; limit?: number } = {}): Promise<HistoryResult> {
    const held = this.threadStates.get(threadId);
    const beforeSeq = options.beforeSeq ?? (held && held.firstSeq > 0 ? held.firstSeq : undefined);
    const result = await this.request<HistoryResult>('thread.history', {
      thread_id: threadId,
      ...(beforeSeq !== undefined ? { before_seq: beforeSeq } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    });
    const state = this.threadStates.ensure(threadId);
    prependEvents(state, result.events, result.has_more);
    this.threadStates.touch(threadId);
    this.emit('thread', state);
    return result;
  }

  /** A message was stored on the thread: the server follows it for this socket from then on, and so do we. */
  protected sentTo(threadId: string): void {
    this.threadStates.ensure(threadId).following = true;
  }

  /** A session is ready: every followed thread is resumed, but for those whose subscribe is still queued. */
  protected resume(queued: ReadonlySet<string>): void {
    for (const state of this.threadStates.all()) {
      if (state.following && !queued.has(state.threadId)) {
        // A thread that cannot be resumed is told (not_found has already dropped it: threadDeleted).
        void this.subscribe(state.threadId, true).catch((error: unknown) => {
          if (error instanceof ConversationError && (error.code === 'not_found' || error.code === 'client_closed')) return;
          this.emit('error', error instanceof ConversationError ? error : new ConversationError('internal_error', String(error)));
        });
      }
    }
  }

  /** A live event: applied to its thread unless it is a duplicate. */
  protected onEvent(event: ThreadEvent): void {
    const state = this.threadStates.ensure(event.payload.thread_id);
    if (!applyEvent(state, event)) return;
    this.emit('event', event);
    this.emit('thread', state);
  }

  protected dropThread(threadId: string): void {
    if (!this.threadStates.delete(threadId)) return;
    this.emit('threadDeleted', threadId);
  }

  /** thread.subscribe from the newest seq held when the frame is written; out of range: start over. */
  private subscribe(threadId: string, urgent: boolean): Promise<ThreadSubscribeResult> {
    const payload = () => ({ thread_id: threadId, after_seq: this.threadStates.get(threadId)?.lastSeq ?? 0 });
    return this.request<ThreadSubscribeResult>('thread.subscribe', payload, { urgent }).catch((error: unknown) => {
      if (error instanceof ConversationError && error.code === 'seq_out_of_range') {
        // This client is ahead of the server (a restored database): what it holds is not the log.
        const state = emptyThread(threadId);
        state.following = true;
        this.threadStates.set(threadId, state);
        this.emit('thread', state);
        return this.request<ThreadSubscribeResult>('thread.subscribe', { thread_id: threadId, after_seq: 0 }, { urgent });
      }
      if (error instanceof ConversationError && error.code === 'not_found') this.dropThread(threadId);
      throw error;
    });
  }
}
