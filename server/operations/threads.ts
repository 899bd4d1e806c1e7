/** Thread operations, shared by the WebSocket frames and the REST routes. */
import { encodeThreadDeleted, RUN_CANCEL_CHANNEL, threadChannel } from '../../broker/index.js';
import { readHistoryPage } from '../../db/event-reads.repository.js';
import { DEFAULT_AGENT_ID, findVisibleAgent } from '../../db/agents.repository.js';
import { runningRunsOfThread } from '../../db/runs.repository.js';
import {
  deleteOwnedThread, findOwnedThread, insertThread, insertThreadWithId, listOwnedThreads, updateOwnedThread,
} from '../../db/threads.repository.js';
import type { Owner } from '../../db/owner.js';
import type { Thread } from '../../db/schema.js';
import type {
  ThreadCreatePayload, ThreadDeletePayload, ThreadGetPayload, ThreadHistoryPayload, ThreadListPayload, ThreadUpdatePayload,
} from '../../protocol/frames.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';
import type { ThreadView } from '../../protocol/results.js';

export function threadView(thread: Thread): ThreadView {
  return {
    id: thread.id,
    title: thread.title,
    agent_id: thread.agent_id,
    last_seq: thread.last_seq,
    archived: thread.archived_at !== null,
    created_at: thread.created_at.toISOString(),
    updated_at: thread.updated_at.toISOString(),
  };
}

async function owned(services: GatewayServices, owner: Owner, threadId: string): Promise<Thread> {
  const thread = await findOwnedThread(services.db, threadId, owner);
  // Someone else's thread and a missing one look the same: no existence oracle.
  if (!thread) throw new RequestError('not_found', `Thread ${threadId} was not found.`);
  return thread;
}

export async function createThread(services: GatewayServices, owner: Owner, input: ThreadCreatePayload): Promise<ThreadView>;
/** With `id`: the thread gets that id, or undefined (the budget refunded) when the id is taken. */
export async function createThread(services: GatewayServices, owner: Owner, input: ThreadCreatePayload, id: string): Promise<ThreadView | undefined>;
export async function createThread(services: GatewayServices, owner: Owner, input: ThreadCreatePayload, id?: string): Promise<ThreadView | undefined> {
  const agentId = input.agent_id ?? DEFAULT_AGENT_ID;
  await services.rateLimits.consumeThread(owner);
  const agent = await findVisibleAgent(services.db, owner.workspaceId, agentId).catch(async (error: unknown) => {
    await services.rateLimits.refundThread(owner);
    throw error;
  });
  if (!agent) {
    await services.rateLimits.refundThread(owner);
    throw new RequestError('not_found', `Agent ${agentId} was not found.`);
  }
  const fields = { agentId: agent.id, title: input.title ?? null };
  if (id === undefined) return threadView(await insertThread(services.db, owner, fields));
  const made = await insertThreadWithId(services.db, owner, { ...fields, id });
  if (!made) await services.rateLimits.refundThread(owner);
  return made && threadView(made);
}

/**
 * The caller's thread `threadId` for a protocol whose clients name their threads (AG-UI, the AI
 * SDK): theirs if it exists, else created with that id (bound to `agentId`, or the default agent),
 * counted as a new thread. Another user's thread is not_found, as if it did not exist.
 */
export async function ensureThread(services: GatewayServices, owner: Owner, threadId: string, agentId?: string): Promise<{ thread: ThreadView; created: boolean }> {
  const found = await findOwnedThread(services.db, threadId, owner);
  if (found) return { thread: threadView(found), created: false };
  const made = await createThread(services, owner, { agent_id: agentId }, threadId);
  if (made) return { thread: made, created: true };
  // Taken meanwhile: by this owner (a concurrent first request) it is theirs; else not found.
  const raced = await findOwnedThread(services.db, threadId, owner);
  if (raced) return { thread: threadView(raced), created: false };
  throw new RequestError('not_found', `Thread ${threadId} was not found.`);
}

export async function getThread(services: GatewayServices, owner: Owner, input: ThreadGetPayload): Promise<ThreadView> {
  return threadView(await owned(services, owner, input.thread_id));
}

/**
 * Cursor of the list: the last row's (updated_at, id), opaque to clients. `u` keeps updated_at's
 * full microsecond precision (a JS Date would cut it to milliseconds and skip the rows that share
 * the boundary row's millisecond).
 */
interface Cursor { u: string; i: string }
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

function decodeCursor(cursor: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Cursor;
    // Only the exact form the list writes: it goes into SQL as a timestamptz.
    if (typeof value.u === 'string' && typeof value.i === 'string' && CURSOR_TIME.test(value.u) && isRealDate(value.u)) {
      return value;
    }
  } catch {
    // fall through
  }
  throw new RequestError('invalid_request', 'cursor is not valid; pass back next_cursor exactly as received.');
}

/**
 * A calendar date Postgres accepts: Date.parse takes 2024-02-30 (as March 1) and year 0, which
 * Postgres refuses, so the parts are checked against what they denote.
 */
function isRealDate(iso: string): boolean {
  const [year, month, day] = iso.slice(0, 10).split('-').map(Number) as [number, number, number];
  if (year < 1 || month < 1 || month > 12) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** The caller's threads, most recently active first, a page at a time. */
export async function listThreads(services: GatewayServices, owner: Owner, input: ThreadListPayload) {
  const limit = input.limit ?? 20;
  const cursor = input.cursor ? decodeCursor(input.cursor) : undefined;
  // A read replica answers when its replay is current (db/read-routing.ts).
  const { threads, hasMore } = await services.routing.latest('list', (db) => listOwnedThreads(db, owner, {
    archived: input.archived ?? false,
    limit,
    ...(cursor ? { after: { updatedAt: cursor.u, id: cursor.i } } : {}),
  }));
  const last = threads[threads.length - 1];
  const next = hasMore && last
    ? Buffer.from(JSON.stringify({ u: last.cursor_at, i: last.id })).toString('base64url')
    : null;
  return { threads: threads.map(threadView), next_cursor: next };
}

/** A page of the thread's stored events before `before_seq`, oldest first. */
export async function threadHistory(services: GatewayServices, owner: Owner, input: ThreadHistoryPayload) {
  const thread = await owned(services, owner, input.thread_id);
  // A read replica answers when its copy has what the page must show: up to the thread's last_seq
  // as the owner check, read on the primary after the request came, saw it (no read added).
  const need = Math.min(thread.last_seq, (input.before_seq ?? Infinity) - 1);
  const { events, hasMore } = await services.routing.bySeq('history', {
    need: () => need,
    read: (db) => readHistoryPage(db, input.thread_id, input.before_seq, input.limit ?? 50),
  });
  return { thread_id: input.thread_id, events, has_more: hasMore };
}

export async function updateThread(services: GatewayServices, owner: Owner, input: ThreadUpdatePayload): Promise<ThreadView> {
  const current = await owned(services, owner, input.thread_id);
  // Nothing to change (an empty SET would be a syntax error): answer the thread as it is.
  if (input.title === undefined && input.archived === undefined) return threadView(current);
  const thread = await updateOwnedThread(services.db, owner, input.thread_id, { title: input.title, archived: input.archived });
  if (!thread) throw new RequestError('not_found', `Thread ${input.thread_id} was not found.`);
  return threadView(thread);
}

/** Deletes the thread with its messages, runs and events; a running turn is told to stop. */
export async function deleteThread(services: GatewayServices, owner: Owner, input: ThreadDeletePayload) {
  await owned(services, owner, input.thread_id);
  const running = await runningRunsOfThread(services.db, input.thread_id);
  if (!(await deleteOwnedThread(services.db, owner, input.thread_id))) throw new RequestError('not_found', `Thread ${input.thread_id} was not found.`);
  // Its turn stops (its writes fail from here on anyway: the thread and the run are gone), and
  // every socket following it, on any gateway, is told and let go.
  for (const runId of running) await services.broker.publish(RUN_CANCEL_CHANNEL, runId).catch(() => {});
  await services.broker
    .publish(threadChannel(input.thread_id), encodeThreadDeleted(input.thread_id, new Date().toISOString()))
    .catch((error) => services.log.warn({ err: error, thread_id: input.thread_id }, 'thread deleted, but its followers could not be told'));
  return { thread_id: input.thread_id, deleted: true as const };
}
