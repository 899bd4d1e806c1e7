/**
 * The answers a RunAgentInput carries to a run that waits (server/operations/tool-waits.ts, the one
 * entry point every protocol uses):
 * - `resume` entries answer approval interrupts (their id names the run and the call): `resolved`
 *   approves, unless its payload says `approved: false`; `cancelled` denies; `payload.reason` is
 *   told to the model. An id that is not one of the caller's waiting calls is refused (not_found),
 *   never taken as an approval; a second `resolved` answer is `already_answered`. A `cancelled`
 *   entry for a call decided already (it expired, the run was cancelled) is how an AG-UI client gets
 *   past an interrupt it can no longer answer: it is taken as read, and the run is followed on.
 * - tool messages answer the calls of the client's own tools the thread's run waits on (the rest of
 *   the history's tool messages are already stored); one that comes too late is taken as read.
 */
import type { Kysely } from 'kysely';
import { runEventsAfter } from '../../db/events.repository.js';
import { findOwnedRun, runningRunsOfThread } from '../../db/runs.repository.js';
import type { Database } from '../../db/schema.js';
import type { Owner } from '../../db/owner.js';
import type { AguiRunInput } from '../../protocol/agui.js';
import { RequestError } from '../errors.js';
import type { GatewayServices } from '../handlers/context.js';
import { answerToolWait, pendingToolWaits } from '../operations/tool-waits.js';
import { parseInterruptId } from './agui-events.js';

const MAX_REASON = 2_000;
const PAGE = 500;

/** The call last answered: the response follows its run from where the run stopped for it. */
export interface AnsweredCall {
  runId: string;
  toolCallId: string;
}

/** Records the input's answers; the call last answered, if any. */
export async function answerWaits(services: GatewayServices, owner: Owner, threadId: string, input: AguiRunInput): Promise<AnsweredCall | undefined> {
  let answered: AnsweredCall | undefined;
  for (const [i, entry] of (input.resume ?? []).entries()) {
    const named = parseInterruptId(entry.interruptId);
    const run = named && (await findOwnedRun(services.db, named.runId, owner));
    if (!named || !run || run.thread_id !== threadId) {
      throw new RequestError('not_found', `resume[${i}].interruptId names no call waiting on thread ${threadId}.`);
    }
    const payload = (typeof entry.payload === 'object' && entry.payload !== null ? entry.payload : {}) as { approved?: unknown; reason?: unknown };
    const reason = typeof payload.reason === 'string' ? payload.reason : undefined;
    if (reason !== undefined && reason.length > MAX_REASON) {
      throw new RequestError('invalid_request', `resume[${i}].payload.reason is longer than the ${MAX_REASON} characters allowed`);
    }
    const approved = entry.status === 'resolved' && payload.approved !== false;
    const answer = { approved, ...(reason ? { reason } : {}) };
    await answerToolWait(services, owner, { run_id: named.runId, tool_call_id: named.toolCallId, answer }).catch(entry.status === 'cancelled' ? tookNote : rethrow);
    answered = { runId: named.runId, toolCallId: named.toolCallId };
  }
  const results = input.messages.filter((m) => m.role === 'tool');
  if (results.length === 0) return answered;
  const [waiting] = await runningRunsOfThread(services.db, threadId);
  if (!waiting) return answered;
  for (const call of await pendingToolWaits(services, owner, waiting)) {
    const message = call.kind === 'client' ? results.find((m) => m.toolCallId === call.tool_call_id) : undefined;
    if (!message) continue;
    const text = typeof message.content === 'string' ? message.content : message.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    const answer = { result: message.error ? `Error: ${message.error}` : text };
    // A result past the call's deadline is refused (already_answered: the model was told it
    // expired) and taken as read: the response is the run as it went on.
    await answerToolWait(services, owner, { run_id: waiting, tool_call_id: call.tool_call_id, answer }).catch(tookNote);
    answered = { runId: waiting, toolCallId: call.tool_call_id };
  }
  return answered;
}

/**
 * A last tool message that answers nothing waiting (the call expired and the run went on without
 * it): the call it answers, found through the assistant message that made it, whose id is the run's
 * (as the view names it), when that run is on this thread.
 */
export async function lateResult(db: Kysely<Database>, threadId: string, input: AguiRunInput): Promise<AnsweredCall | undefined> {
  const last = input.messages.at(-1);
  // The view's own results (`<call>:result`) are the server's, not an answer.
  if (last?.role !== 'tool' || last.id === `${last.toolCallId}:result`) return undefined;
  const owner = input.messages.find((m) => m.role === 'assistant' && m.toolCalls?.some((c) => c.id === last.toolCallId));
  if (!owner) return undefined;
  const call = { runId: owner.id, toolCallId: last.toolCallId };
  return (await requestSeq(db, threadId, call, ['client_tool_requested'])) === undefined ? undefined : call;
}

/** A call decided already (expired, cancelled with its run): the answer is taken as read. */
function tookNote(error: unknown): void {
  if (!(error instanceof RequestError && error.code === 'already_answered')) throw error;
}

function rethrow(error: unknown): never {
  throw error;
}

/** The seq of the event the run stopped at for the call (its approval or client-tool request). */
export async function requestSeq(
  db: Kysely<Database>,
  threadId: string,
  call: AnsweredCall,
  types: readonly string[] = ['approval_requested', 'client_tool_requested'],
): Promise<number | undefined> {
  for (let after = 0; ; ) {
    const page = await runEventsAfter(db, threadId, call.runId, after, PAGE);
    for (const stored of page) {
      if (types.includes(stored.type)) {
        const event = JSON.parse(stored.frame) as { payload: { tool_call_id: string } };
        if (event.payload.tool_call_id === call.toolCallId) return stored.seq;
      }
      after = stored.seq;
    }
    if (page.length < PAGE) return undefined;
  }
}
