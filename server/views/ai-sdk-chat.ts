/**
 * What an AI SDK chat request asks of the server, before its response streams: the chat is the
 * caller's thread (created on first use); its last message is either the user's new message (a
 * turn, idempotent on the UI message id) or the assistant message carrying approval answers
 * (`addToolApprovalResponse`), which are recorded through the one entry point every protocol uses.
 * Refusals are thrown here, so they are HTTP errors with their codes, not a stream.
 */
import { findOwnedRun } from '../../db/runs.repository.js';
import type { Owner } from '../../db/owner.js';
import type { AiSdkChatRequest, AiSdkUIMessage, AiSdkUIPart } from '../../protocol/ai-sdk.js';
import type { ThreadEvent } from '../../protocol/frames.js';
import { LIMITS } from '../../protocol/limits.js';
import { idSchema } from '../../protocol/resources.js';
import { RequestError } from '../errors.js';
import type { GatewayServices } from '../handlers/context.js';
import { sendMessage } from '../operations/messages.js';
import { ensureThread } from '../operations/threads.js';
import { answerToolWait, pendingToolWaits } from '../operations/tool-waits.js';
import { cancelRun } from '../operations/runs.js';
import { activeTurn, runStart } from '../streams/active-turn.js';
import { parseApprovalId } from './ai-sdk-approval-id.js';
import type { RunResponse } from './ai-sdk-response.js';

const CLIENT_ID = new RegExp(idSchema.pattern);

/** Records what the request carries and says which run its response follows, and from where. */
export async function startChatTurn(services: GatewayServices, owner: Owner, request: AiSdkChatRequest): Promise<RunResponse> {
  if (request.trigger === 'regenerate-message') {
    throw new RequestError('invalid_request', 'Regenerating an answer is not supported: a stored answer is never replaced. Send a new message instead.');
  }
  const last = request.messages[request.messages.length - 1]!;
  const stillWaiting = waitCheck(services, owner);
  if (last.role === 'user') {
    if (request.messageId !== undefined) {
      throw new RequestError('invalid_request', 'Editing a sent message is not supported: its answer is stored. Send a new message instead.');
    }
    const message = { content: userText(last), client_message_id: clientMessageId(last) };
    const { thread } = await ensureThread(services, owner, request.id, request.agent_id);
    const turn = await sendMessage(services, owner, { ...message, thread_id: thread.id });
    return { scope: { threadId: thread.id, runId: turn.runId, afterSeq: turn.fromSeq - 1 }, stillWaiting };
  }
  if (last.role === 'assistant') {
    // The chat exists: the answered run is on it (checked with each answer).
    const answered = await answerApprovals(services, owner, request.id, approvalAnswers(last));
    const afterSeq = await runStart(services.db, request.id, answered.runId);
    if (afterSeq === undefined) throw new RequestError('not_found', `Run ${answered.runId} was not found.`);
    return {
      scope: { threadId: request.id, runId: answered.runId, afterSeq },
      // The client's message ends at the request it answered; the response goes on from there.
      continueAfter: (event: ThreadEvent) => event.type === 'approval_requested' && event.payload.tool_call_id === answered.lastCall,
      stillWaiting,
    };
  }
  throw new RequestError('invalid_request', 'The last message must be the user\'s new message, or the assistant message with tool approval answers.');
}

/**
 * The chat's running turn from its start, for `resumeStream()`; undefined when nothing runs, and
 * for a chat that is not the caller's (the same answer: nothing of theirs to resume).
 */
export async function resumeChatTurn(services: GatewayServices, owner: Owner, threadId: string): Promise<RunResponse | undefined> {
  if (!(await services.reads.ownedThread(threadId, owner))) return undefined;
  const turn = await activeTurn(services.db, threadId);
  return turn && { scope: { threadId, ...turn }, stillWaiting: waitCheck(services, owner) };
}

/** Cancels the chat's running turn; undefined when nothing runs (or it ended meanwhile). */
export async function stopChatTurn(services: GatewayServices, owner: Owner, threadId: string) {
  if (!(await services.reads.ownedThread(threadId, owner))) throw new RequestError('not_found', `Chat ${threadId} was not found.`);
  const turn = await activeTurn(services.db, threadId);
  if (!turn) return undefined;
  try {
    return await cancelRun(services, owner, turn.runId);
  } catch (error) {
    if (error instanceof RequestError && error.code === 'conflict') return undefined;
    throw error;
  }
}

/** The text of the user's message: its text parts, joined. */
function userText(message: AiSdkUIMessage): string {
  const text = message.parts.filter((part) => part.type === 'text').map((part) => part.text ?? '').join('\n');
  if (text.trim().length === 0) throw new RequestError('invalid_request', 'The last message has no text; only text parts are read.');
  if (text.length > LIMITS.contentChars) throw new RequestError('too_large', `The message is longer than the ${LIMITS.contentChars} characters allowed.`);
  return text;
}

/** The UI message id, which makes a resent request the same turn (client_message_id). */
function clientMessageId(message: AiSdkUIMessage): string {
  if (message.id.length > LIMITS.idLength || !CLIENT_ID.test(message.id)) {
    throw new RequestError('invalid_request', `The message id must be 1 to ${LIMITS.idLength} letters, digits or _.:- (it is the message's idempotency key).`);
  }
  return message.id;
}

type ApprovalPart = AiSdkUIPart & { approval: { id: string; approved: boolean; reason?: string } };

/** The tool parts of the message answered with addToolApprovalResponse; refused when there are none. */
function approvalAnswers(message: AiSdkUIMessage): ApprovalPart[] {
  const answers = message.parts.filter((part): part is ApprovalPart => part.state === 'approval-responded' && typeof part.approval?.approved === 'boolean');
  if (answers.length === 0) {
    throw new RequestError('invalid_request', 'The last message is an assistant message without a tool approval answer; send a user message.');
  }
  return answers;
}

/**
 * Records each answered approval of the message. Its id names the run and the call; the store
 * checks that such a call waits on a run of this caller (a forged or unknown id is not_found, a
 * second answer already_answered), and the run must be of this chat.
 */
async function answerApprovals(services: GatewayServices, owner: Owner, threadId: string, answers: ApprovalPart[]) {
  let runId: string | undefined;
  let lastCall = '';
  for (const part of answers) {
    const named = parseApprovalId(part.approval.id);
    if (!named || named.toolCallId !== part.toolCallId || (runId !== undefined && named.runId !== runId)) {
      throw new RequestError('not_found', `Approval ${part.approval.id} was not found.`);
    }
    if (runId === undefined) {
      const run = await findOwnedRun(services.db, named.runId, owner);
      if (!run || run.thread_id !== threadId) throw new RequestError('not_found', `Approval ${part.approval.id} was not found.`);
      runId = named.runId;
    }
    await answerToolWait(services, owner, {
      run_id: named.runId,
      tool_call_id: named.toolCallId,
      answer: { approved: part.approval.approved, ...(part.approval.reason ? { reason: part.approval.reason } : {}) },
    });
    lastCall = named.toolCallId;
  }
  return { runId: runId!, lastCall };
}

/** Whether the call still waits for its approval (the stream ends there if so). */
function waitCheck(services: GatewayServices, owner: Owner) {
  return async (runId: string, toolCallId: string) =>
    (await pendingToolWaits(services, owner, runId)).some((wait) => wait.tool_call_id === toolCallId);
}
