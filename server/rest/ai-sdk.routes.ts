/**
 * The AI SDK's chat endpoints (`useChat` / `DefaultChatTransport` with `api` = `/v1/ai-sdk/chat`):
 * a turn answered as a UI message stream, the running turn resumed, and stopped. The streams are
 * views of the thread's stored events (server/views/ai-sdk*.ts); a response the client drops
 * leaves the turn running, so it can be resumed.
 */
import { AI_SDK_DONE, AI_SDK_MAX_BODY_BYTES, AI_SDK_STREAM_HEADERS, aiSdkChatRequestSchema } from '../../protocol/ai-sdk.js';
import { resultSchemas } from '../../protocol/resources.js';
import type { GatewayServices } from '../handlers/context.js';
import { eventStream, json, ok, refusal, type EventWriter, type StreamReply } from '../http/route.js';
import { RequestError } from '../errors.js';
import { holdStreamSlot } from '../streams/stream-slot.js';
import { finishChunk } from '../views/ai-sdk.js';
import { resumeChatTurn, startChatTurn, stopChatTurn } from '../views/ai-sdk-chat.js';
import { writeRunResponse, type RunResponse } from '../views/ai-sdk-response.js';
import { owner, route } from './deps.js';
import { idPath } from './params.js';

const STREAM = eventStream(
  'The UI message stream (protocol v1 of the `ai` package): `data: <chunk>` lines, from `start` to `finish`, then `data: [DONE]`.',
  'One UI message chunk as JSON (start, start-step, text-start/-delta/-end, tool-input-available, tool-approval-request, tool-output-available, tool-output-error, tool-output-denied, finish-step, error, finish), or [DONE].',
);
const STREAM_HEADERS = {
  'x-vercel-ai-ui-message-stream': { description: 'Always `v1`: the stream is a UI message stream.', schema: { const: 'v1' } },
};

/** Follows `response` with the user's stream slot held; released when the stream ends. */
function streamReply(services: GatewayServices, response: RunResponse, release: () => void): StreamReply {
  return {
    status: 200,
    headers: { ...AI_SDK_STREAM_HEADERS },
    stream: async (sse: EventWriter) => {
      try {
        await writeRunResponse(services, response, sse);
      } finally {
        release();
      }
    },
  };
}

export const aiSdkRoutes = [
  route({
    method: 'post',
    path: '/v1/ai-sdk/chat',
    operationId: 'aiSdkChat',
    tags: ['ai-sdk'],
    summary: 'Chat turn as an AI SDK UI message stream',
    description:
      'What `DefaultChatTransport` (the `ai` package\'s `useChat`) sends. The chat `id` is a thread of yours, created on first ' +
      'use (bound to `agent_id`, else the default agent). The last message is read: a user message starts a turn ' +
      '(its id is the idempotency key, so a resent request does not run twice) and the answer streams as one assistant ' +
      'UI message whose id is the run id; an assistant message whose tool parts carry `addToolApprovalResponse` answers ' +
      'records them and the same assistant message goes on. Earlier messages come from the store. A run waiting for an ' +
      'approval ends the response with `tool-approval-request`. A dropped response does not stop the turn: resume it with ' +
      'GET /v1/ai-sdk/chat/{id}/stream, stop it with POST /v1/ai-sdk/chat/{id}/stop.',
    auth: 'bearer',
    cors: true,
    maxBodyBytes: AI_SDK_MAX_BODY_BYTES,
    body: { schema: aiSdkChatRequestSchema, description: '`{id, messages, trigger, messageId?}` as the transport sends it, plus `agent_id` for a new chat.' },
    responses: {
      200: { ...STREAM, headers: STREAM_HEADERS },
      400: refusal('Not a chat request, a last message that is neither a user message with text nor approval answers, a regenerate or an edit.'),
      404: refusal('The chat is another user\'s, the agent was not found, or an approval id names no call waiting on a run of this chat.'),
      409: refusal('A turn is active and the busy policy is `reject` (`thread_busy`), or the approval was answered before (`already_answered`).'),
      429: refusal('Too many messages, runs or open streams (RATE_LIMIT_MESSAGES_PER_MIN, RATE_LIMIT_RUNS_PER_USER, RATE_LIMIT_CONNECTIONS_PER_USER).'),
    },
    handler: async ({ principal, body }, { services }) => {
      const release = await holdStreamSlot(services, owner(principal));
      try {
        return streamReply(services, await startChatTurn(services, owner(principal), body), release);
      } catch (error) {
        release();
        throw error;
      }
    },
  }),
  route({
    method: 'get',
    path: '/v1/ai-sdk/chat/:id/stream',
    operationId: 'aiSdkResumeStream',
    tags: ['ai-sdk'],
    summary: 'Resume the running turn\'s UI message stream',
    description:
      'What `resumeStream()` asks for: the chat\'s running turn (or one waiting for an approval, or queued) replayed from its ' +
      '`start`, then followed live until it ends. 204 when nothing runs, also for a chat that is not yours or does not exist.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: {
      200: { ...STREAM, headers: STREAM_HEADERS },
      204: { description: 'Nothing runs on this chat: nothing to resume.' },
    },
    handler: async ({ principal, params }, { services }) => {
      const response = await resumeChatTurn(services, owner(principal), params.id);
      if (!response) return ok(undefined, 204);
      return {
        status: 200,
        headers: { ...AI_SDK_STREAM_HEADERS },
        // The slot is taken once the stream starts (a HEAD request has none).
        stream: async (sse: EventWriter) => {
          let release: () => void;
          try {
            release = await holdStreamSlot(services, owner(principal));
          } catch (error) {
            if (!(error instanceof RequestError)) throw error;
            for (const data of [{ type: 'error', errorText: error.message }, finishChunk('error'), AI_SDK_DONE]) await sse.send({ data });
            return;
          }
          await streamReply(services, response, release).stream(sse);
        },
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/ai-sdk/chat/:id/stop',
    operationId: 'aiSdkStop',
    tags: ['ai-sdk'],
    summary: 'Stop the running turn',
    description:
      'Cancels the chat\'s running turn (a queued one at once, a running one through its worker, one waiting for an approval ' +
      'too); its stream ends with `finish`. Closing the response does not stop a turn: this does. 204 when nothing runs.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: {
      200: json(resultSchemas.cancelled, 'Cancelled, or cancellation requested.'),
      204: { description: 'Nothing runs on this chat.' },
      404: refusal('No such chat of yours.'),
    },
    handler: async ({ principal, params }, { services }) => {
      const cancelled = await stopChatTurn(services, owner(principal), params.id);
      return cancelled ? ok(cancelled) : ok(undefined, 204);
    },
  }),
];
