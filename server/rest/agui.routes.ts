/**
 * AG-UI over HTTP (docs/agui.md): `POST /v1/agui` takes a RunAgentInput, as @ag-ui/client's
 * HttpAgent sends it, and answers the run as AG-UI events over server-sent events. The events are
 * the view of the thread's stored events (server/views/agui*.ts); a dropped response leaves the run
 * running. The same runs over the `agui.v1` WebSocket subprotocol, which can resume after a drop.
 */
import { AGUI_MAX_BODY_BYTES, runAgentInputSchema } from '../../protocol/agui.js';
import { eventStream, refusal, type EventWriter } from '../http/route.js';
import { holdStreamSlot } from '../streams/stream-slot.js';
import type { AguiOut } from '../views/agui-events.js';
import { applyRunInput } from '../views/agui-input.js';
import { emptyRun, streamRun } from '../views/agui-run-stream.js';
import { owner, route } from './deps.js';

/** A comment line this often keeps proxies from closing a stream that waits (a queued run, a slow tool). */
const KEEP_ALIVE_MS = 15_000;

export const aguiRoutes = [
  route({
    method: 'post',
    path: '/v1/agui',
    operationId: 'aguiRun',
    tags: ['ag-ui'],
    summary: 'Run the agent on a thread (AG-UI over server-sent events)',
    description:
      'What `new HttpAgent({url, headers})` of @ag-ui/client sends. `threadId` is a thread of yours (one made with POST ' +
      '/v1/threads picks its agent), or a new id: the thread is created on first use (bound to `forwardedProps.agent_id`, ' +
      'else the default agent). A last message from the user starts a turn (its id is the idempotency key: a resent request ' +
      'follows the same run); earlier messages come from the store. `resume` answers approval interrupts (`resolved` ' +
      'approves unless `payload.approved` is false, `cancelled` denies, `payload.reason` is told to the model) and tool ' +
      'messages answer calls of the client\'s own `tools`; the response then follows the run on. The answer is the AG-UI run: ' +
      'RUN_STARTED to RUN_FINISHED (its `outcome` an interrupt while an approval is awaited, or success with ' +
      '`pendingToolCallIds` while a client tool\'s result is) or RUN_ERROR. Each event carries `metadata.seq`. A dropped ' +
      'response does not stop the run.',
    auth: 'bearer',
    cors: true,
    maxBodyBytes: AGUI_MAX_BODY_BYTES,
    body: { schema: runAgentInputSchema, description: 'AG-UI 1.0 RunAgentInput (@ag-ui/core RunAgentInputSchema; the thread id is one of ours).' },
    responses: {
      200: eventStream('The run as AG-UI events, one per `data:` line.', 'One AG-UI 1.0 event as JSON (@ag-ui/core EventSchema), with `metadata.seq` (and `metadata.part`).'),
      400: refusal('Not a RunAgentInput, or a new user message with no text or an id that is not a valid idempotency key.'),
      404: refusal('The thread is another user\'s, the agent was not found, or a `resume` entry names no call waiting on this thread.'),
      409: refusal('A run is active and the busy policy is `reject` (`thread_busy`), or an interrupt was answered before (`already_answered`).'),
      429: refusal('Too many messages, runs or open streams (RATE_LIMIT_MESSAGES_PER_MIN, RATE_LIMIT_RUNS_PER_USER, RATE_LIMIT_CONNECTIONS_PER_USER).'),
    },
    handler: async ({ principal, body }, { services }) => {
      const who = owner(principal);
      const release = await holdStreamSlot(services, who);
      let followed: Awaited<ReturnType<typeof applyRunInput>>;
      try {
        followed = await applyRunInput(services, who, body);
      } catch (error) {
        release();
        throw error;
      }
      return {
        status: 200,
        stream: async (sse: EventWriter) => {
          const keepAlive = setInterval(() => void sse.comment('keep-alive'), KEEP_ALIVE_MS);
          const send = (event: AguiOut) => sse.send({ data: event });
          try {
            if (!followed) {
              for (const event of emptyRun(body.threadId, body.runId)) await send(event);
              return;
            }
            // The headers go out at once: the run may wait in the thread's queue.
            await sse.comment('run');
            await streamRun(services, body.threadId, followed, send, sse.signal);
          } finally {
            clearInterval(keepAlive);
            release();
          }
        },
      };
    },
  }),
];
