/**
 * The client frames of an `agui.v1` socket, after the intake every frame passes (./frame-intake.ts:
 * rate, binary, size): parsed and validated (protocol/agui-frames.ts), queued in the socket's
 * order, handled in one of the user's request slots, failures as `error` frames.
 *
 *   agui.run      a RunAgentInput, applied as POST /v1/agui applies it; the socket then follows the
 *                 thread from that run's RUN_STARTED (or joins it with a prelude, when nothing new
 *                 was asked)
 *   agui.connect  follows a thread after a position {after_seq, after_part?}, or, without one, from
 *                 a prelude: RUN_STARTED, a MESSAGES_SNAPSHOT, the open run from its start
 */
import { parseAguiFrame } from '../../protocol/agui-frames.js';
import type { AguiClientFrame } from '../../protocol/agui.js';
import type { Config } from '../../config/config.js';
import { admitFrame } from './admit-frame.js';
import { classifyFailure, RequestError } from '../errors.js';
import type { GatewayServices } from '../handlers/context.js';
import { getThread } from '../operations/threads.js';
import { applyRunInput } from '../views/agui-input.js';
import { streamThread, type AguiStart } from '../views/agui-thread-stream.js';
import type { AguiConnection } from './agui-connection.js';

export type Strike = (connection: AguiConnection, reason: string) => void;

export function createAguiIntake(config: Readonly<Config>, services: GatewayServices) {
  const { limits } = config;

  function follow(connection: AguiConnection, threadId: string, start: AguiStart): void {
    connection.follow((signal) => streamThread(services, threadId, start, (event) => connection.sendEvent(event, signal), signal));
  }

  async function handle(connection: AguiConnection, frame: AguiClientFrame): Promise<void> {
    if (frame.type === 'agui.run') {
      const run = await applyRunInput(services, connection.owner, frame.payload);
      const threadId = frame.payload.threadId;
      follow(connection, threadId, run && !run.join ? { after: { seq: run.after }, untilRunStarts: run.runId } : {});
      return;
    }
    const { thread_id: threadId, after_seq: seq, after_part: part } = frame.payload;
    const thread = await getThread(services, connection.owner, { thread_id: threadId });
    if (seq !== undefined && seq > thread.last_seq) {
      throw new RequestError(
        'seq_out_of_range',
        `Thread ${threadId} has no events after seq ${thread.last_seq}; after_seq ${seq} is ahead of it. Connect again without after_seq.`,
        undefined,
        { last_seq: thread.last_seq },
      );
    }
    follow(connection, threadId, seq === undefined ? {} : { after: { seq, ...(part === undefined ? {} : { part }) } });
  }

  async function dispatch(connection: AguiConnection, frame: AguiClientFrame): Promise<void> {
    if (connection.closed) return;
    try {
      await services.rateLimits.withRequestSlot(connection.principal, () => handle(connection, frame));
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure !== error && failure.code === 'internal_error') connection.log.error({ err: error, frame_type: frame.type }, 'frame handler failed');
      connection.sendError(frame.id, failure.code, failure.message, failure.retryAfterMs, failure.details);
    }
  }

  /** One text frame of an agui socket, past the checks every frame gets. */
  return function aguiIntake(connection: AguiConnection, text: string, strike: Strike): void {
    admitFrame(connection, parseAguiFrame(text), dispatch, limits.maxQueuedFrames, strike);
  };
}
