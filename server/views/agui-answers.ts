/**
 * The answers a RunAgentInput carries to a run that waits (server/operations/tool-waits.ts, the one
 * entry point every protocol uses):
 * - `resume` entries answer approval interrupts (their id names the run and the call): `resolved`
 *   approves, unless its payload says `approved: false`; `cancelled` denies; `payload.reason` is
 *   told to the model. An id that is not one of the caller's waiting calls is refused (not_found),
 *   never taken as an approval; a second answer is `already_answered`.
 * - tool messages answer the calls of the client's own tools the thread's run waits on (the rest of
 *   the history's tool messages are already stored).
 */
import { findOwnedRun, runningRunsOfThread } from '../../db/runs.repository.js';
import type { Owner } from '../../db/owner.js';
import type { AguiRunInput } from '../../protocol/agui.js';
import { RequestError } from '../errors.js';
import type { GatewayServices } from '../handlers/context.js';
import { answerToolWait, pendingToolWaits } from '../operations/tool-waits.js';
import { parseInterruptId } from './agui-events.js';

const MAX_REASON = 2_000;

/** Records the input's answers; the run they went to, if any. */
export async function answerWaits(services: GatewayServices, owner: Owner, threadId: string, input: AguiRunInput): Promise<string | undefined> {
  let answered: string | undefined;
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
    await answerToolWait(services, owner, { run_id: named.runId, tool_call_id: named.toolCallId, answer: { approved, ...(reason ? { reason } : {}) } });
    answered = named.runId;
  }
  const results = input.messages.filter((m) => m.role === 'tool');
  if (results.length === 0) return answered;
  const [waiting] = await runningRunsOfThread(services.db, threadId);
  if (!waiting) return answered;
  for (const call of await pendingToolWaits(services, owner, waiting)) {
    const message = call.kind === 'client' ? results.find((m) => m.toolCallId === call.tool_call_id) : undefined;
    if (!message) continue;
    const text = typeof message.content === 'string' ? message.content : message.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    await answerToolWait(services, owner, { run_id: waiting, tool_call_id: call.tool_call_id, answer: { result: message.error ? `Error: ${message.error}` : text } });
    answered = waiting;
  }
  return answered;
}
