/** Messages and runs: the REST mirror of message.send and run.cancel. */
import { requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { sendMessage } from '../operations/messages.js';
import { cancelRun } from '../operations/runs.js';
import { json, ok, refusal } from '../http/route.js';
import { owner, route } from './deps.js';
import { idPath } from './params.js';

export const messageRoutes = [
  route({
    method: 'post',
    path: '/v1/threads/:id/messages',
    operationId: 'postMessage',
    tags: ['messages'],
    summary: 'Send a message (start a turn)',
    description:
      'Records the user message and queues the agent\'s turn, applying the busy policy. Returns at once (202); the reply ' +
      'streams as events: follow them over the WebSocket or with GET /v1/threads/{id}/events. Idempotent on ' +
      '`client_message_id` (a repeat answers `deduplicated: true`).',
    auth: 'bearer',
    cors: true,
    params: idPath,
    body: { schema: requestSchemas['message.post'], description: '`message.send` without `thread_id` (it is in the path).' },
    responses: {
      202: json(resultSchemas.sent, 'The message is stored and the run queued.'),
      404: refusal('The thread (or its agent) was not found.'),
      409: refusal('A run is active and the busy policy is `reject` (`thread_busy`, retry later), or the thread is bound to another agent (`conflict`).'),
      429: refusal('Too many messages this minute (RATE_LIMIT_MESSAGES_PER_MIN, shared with `message.send`) or too many queued and running turns (RATE_LIMIT_RUNS_PER_USER).'),
    },
    handler: async ({ principal, params, body }, { services }) => {
      const turn = await sendMessage(services, owner(principal), { ...body, thread_id: params.id });
      return ok(
        { thread_id: turn.threadId, message_id: turn.messageId, run_id: turn.runId, ...(turn.deduplicated ? { deduplicated: true } : {}) },
        202,
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/runs/:id/cancel',
    operationId: 'cancelRun',
    tags: ['runs'],
    summary: 'Cancel a run',
    description:
      'A queued run is cancelled at once (`cancelled`); a running one is signalled to its worker (`cancelling`) and ends ' +
      'with an agent_completed event. Only the thread\'s owner may cancel. No body.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: {
      200: json(resultSchemas.cancelled, 'Cancelled, or cancellation requested.'),
      404: refusal('No such run on one of your threads.'),
      409: refusal('The run has already finished.'),
    },
    handler: async ({ principal, params }, { services }) => ok(await cancelRun(services, owner(principal), params.id)),
  }),
];
