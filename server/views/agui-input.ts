/**
 * What an AG-UI RunAgentInput asks of the thread, the same for `POST /v1/agui` and the `agui.run`
 * frame: the thread is the caller's (an existing one, or created with the client's id); `resume`
 * answers the run's interrupts and tool messages answer its client tools (./agui-answers.ts); a
 * last message from the user is the new input (its AG-UI id is the client_message_id, so a resent
 * request does not run twice). Earlier messages are not read: the thread's history is the store's.
 * Returns the run the answer follows.
 */
import type { Owner } from '../../db/owner.js';
import type { AguiRunInput } from '../../protocol/agui.js';
import { LIMITS } from '../../protocol/limits.js';
import { RequestError } from '../errors.js';
import type { GatewayServices } from '../handlers/context.js';
import { sendMessage } from '../operations/messages.js';
import { ensureThread } from '../operations/threads.js';
import { activeTurn, runStart } from '../streams/active-turn.js';
import { answerWaits, lateResult, requestSeq } from './agui-answers.js';

export interface FollowedRun {
  runId: string;
  /** The seq of the run's first event (its user message). */
  firstSeq: number;
  /** Events after this seq are what the client asked for (the run's start, or what follows the stop it answered). */
  after: number;
  /**
   * Nothing new was asked: the client joins the thread's active turn and gets its current AG-UI
   * run from its start (the interrupt it waits on, if it waits).
   */
  join: boolean;
}

/** Applies the input; the run its answer follows, none when there is nothing to run. */
export async function applyRunInput(services: GatewayServices, owner: Owner, input: AguiRunInput): Promise<FollowedRun | undefined> {
  const props = input.forwardedProps as { agent_id?: unknown } | undefined;
  const agentId = typeof props?.agent_id === 'string' ? props.agent_id : undefined;
  const { thread } = await ensureThread(services, owner, input.threadId, agentId);
  const threadId = thread.id;
  const last = input.messages.at(-1);
  const answered = (await answerWaits(services, owner, threadId, input)) ?? (await lateResult(services.db, threadId, input));
  const sent = last?.role === 'user' ? await send(services, owner, threadId, input, last.id, last.content) : undefined;
  if (answered) {
    // What follows the stop for the call the client answered: the run going on (maybe gone on
    // already, when the call expired and the client's `cancelled` only took note).
    const start = await runStart(services.db, threadId, answered.runId);
    const stopped = await requestSeq(services.db, threadId, answered);
    if (start === undefined || stopped === undefined) throw new RequestError('not_found', `Run ${answered.runId} was not found.`);
    return { runId: answered.runId, firstSeq: start + 1, after: stopped, join: false };
  }
  if (sent) return { runId: sent.runId, firstSeq: sent.fromSeq, after: sent.fromSeq - 1, join: false };
  const active = await activeTurn(services.db, threadId);
  return active && { runId: active.runId, firstSeq: active.afterSeq + 1, after: thread.last_seq, join: true };
}

type Content = Extract<AguiRunInput['messages'][number], { role: 'user' }>['content'];

async function send(services: GatewayServices, owner: Owner, threadId: string, input: AguiRunInput, messageId: string, content: Content) {
  const at = `messages[${input.messages.length - 1}]`;
  // Text parts are the message; media parts are not kept (the store holds text).
  const text = typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('');
  if (text === '') throw new RequestError('invalid_request', `${at} (the user's new message) has no text.`);
  if (text.length > LIMITS.contentChars) throw new RequestError('too_large', `${at}.content is longer than the ${LIMITS.contentChars} characters allowed`);
  if (messageId.length > LIMITS.idLength || !/^[A-Za-z0-9_.:-]+$/.test(messageId)) {
    throw new RequestError('invalid_request', `${at}.id must be 1 to ${LIMITS.idLength} of A-Z a-z 0-9 _ . : - (it is the message's idempotency key)`);
  }
  const tools = input.tools.map((tool) => ({
    name: tool.name,
    description: tool.description,
    parameters: (isObject(tool.parameters) ? tool.parameters : { type: 'object', properties: {} }) as Record<string, unknown>,
  }));
  return sendMessage(services, owner, {
    content: text,
    thread_id: threadId,
    client_message_id: messageId,
    ...(tools.length > 0 ? { client_tools: tools } : {}),
  });
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
