import { RUN_CANCEL_CHANNEL } from '../../broker/index.js';
import { recordTurn, TurnRejected, type RecordedTurn } from '../../db/turns.repository.js';
import type { Owner } from '../../db/owner.js';
import type { ClientToolDef } from '../../db/schema.js';
import type { MessageSendPayload } from '../../protocol/frames.js';
import { type GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';
import { tooManyRuns } from '../rate-limits/index.js';
import { cancelIfWaiting } from './runs.js';

/** What a send may carry beyond the frame: tools a frontend offers for this run (AG-UI `RunAgentInput.tools`). */
export interface SendInput extends MessageSendPayload {
  /** Offered to the model beside the agent's; a call to one waits for the client's result (client_tool_requested). */
  client_tools?: ClientToolDef[];
}

/** A function name the model APIs accept. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Client tools must be well named, distinct, and not named like a tool of this server (which would win). */
function checkClientTools(services: GatewayServices, tools: ClientToolDef[]): void {
  const names = tools.map((tool) => tool.name);
  const bad = names.find((name) => !TOOL_NAME.test(name));
  if (bad !== undefined) throw new RequestError('invalid_request', `Client tool name ${JSON.stringify(bad)} must be 1-64 letters, digits, _ or -.`);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice) throw new RequestError('invalid_request', `Client tool ${twice} is offered twice.`);
  const clash = names.filter((name) => services.toolNames.includes(name));
  if (clash.length > 0) {
    throw new RequestError('invalid_request', `Client tool${clash.length > 1 ? 's' : ''} ${clash.join(', ')} ${clash.length > 1 ? 'have' : 'has'} the name of a server tool; rename ${clash.length > 1 ? 'them' : 'it'}.`);
  }
}

/**
 * Records the user's message and a queued run (one transaction, idempotent on client_message_id,
 * applying the thread's busy policy), publishes what was stored and enqueues the turn. A failed
 * publish or enqueue is logged, not returned: the turn is durable and the sweeper enqueues it.
 *
 * Rate limits: the send counts toward RATE_LIMIT_MESSAGES_PER_MIN first (given back when nothing
 * was stored: a deduplicated retry or a refusal), and recordTurn enforces RATE_LIMIT_RUNS_PER_USER.
 */
export async function sendMessage(services: GatewayServices, owner: Owner, input: SendInput): Promise<RecordedTurn> {
  if (input.client_tools?.length) checkClientTools(services, input.client_tools);
  const limits = services.rateLimits;
  await limits.consumeMessage(owner);
  const newThread = input.thread_id === undefined;
  if (newThread) {
    await limits.consumeThread(owner).catch(async (error: unknown) => {
      await limits.refundMessage(owner);
      throw error;
    });
  }
  let turn: RecordedTurn;
  try {
    turn = await recordTurn(services.db, owner, {
      content: input.content,
      threadId: input.thread_id,
      agentId: input.agent_id,
      clientMessageId: input.client_message_id,
      onBusy: input.on_busy,
      maxActiveRuns: limits.limits.runsPerUser,
      ...(input.client_tools?.length ? { clientTools: input.client_tools } : {}),
    });
  } catch (error) {
    // Nothing was stored: the budgets are given back (also when the store failed, so a client
    // retrying through a database outage is not charged for every attempt).
    await limits.refundMessage(owner);
    if (newThread) await limits.refundThread(owner);
    if (error instanceof TurnRejected) {
      if (error.code === 'rate_limited') throw tooManyRuns(limits.limits.runsPerUser);
      throw new RequestError(error.code, error.message);
    }
    throw error;
  }
  if (turn.deduplicated) {
    await limits.refundMessage(owner);
    if (newThread) await limits.refundThread(owner);
  }
  if (turn.deduplicated || !turn.event) return turn;
  // Only for the warnings below: a child logger costs more than most sends ever log.
  const log = { warn: (fields: object, message: string) => services.log.warn({ thread_id: turn.threadId, run_id: turn.runId, ...fields }, message) };
  for (const runId of turn.interruptRunIds) {
    await services.broker.publish(RUN_CANCEL_CHANNEL, runId).catch((error) => log.warn({ err: error }, 'interrupt not delivered'));
  }
  await services.events.publish(turn.threadId, [...turn.cancelledEvents, turn.event]);
  // An interrupted run that waits for an answer has no worker to signal: it ends here.
  for (const runId of turn.interruptRunIds) {
    await cancelIfWaiting(services, runId).catch((error) => log.warn({ err: error, interrupted: runId }, 'waiting run not cancelled'));
  }
  try {
    await services.queue.enqueue({ runId: turn.runId, threadId: turn.threadId });
  } catch (error) {
    log.warn({ err: error }, 'turn not enqueued; the sweeper will pick it up');
  }
  return turn;
}
