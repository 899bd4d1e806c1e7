/**
 * A socket's inbound frames, from the uWS callback to the handler: the per-connection frame rate
 * (a frame past it is refused unparsed), binary and size checks, the bound on depth and values,
 * JSON and schema validation, then the connection's ordered queue (frames take effect in the
 * order they were sent, whatever their types; a bounded number may wait), the user's share of
 * requests in flight, and the one place that turns a handler's failure into an `error` frame.
 */
import { CloseCodes, tooLargeReason } from '../../protocol/codes.js';
import { parseClientFrame } from '../../protocol/validate.js';
import type { ClientFrame } from '../../protocol/frames.js';
import type { Connection } from './connection.js';
import { handlers } from '../handlers/index.js';
import type { FrameHandler, GatewayServices } from '../handlers/context.js';
import { classifyFailure } from '../errors.js';
import { peekFrameId } from './frame-id.js';
import { tooManyFrames } from '../rate-limits/index.js';
import type { Config } from '../../config/config.js';
import { admitFrame } from './admit-frame.js';
import { AguiConnection } from './agui-connection.js';
import { createAguiIntake } from './agui-intake.js';

export function createFrameIntake(config: Readonly<Config>, services: GatewayServices) {
  const { limits } = config;
  const perSecond = config.rateLimits.framesPerSecond;
  const agui = createAguiIntake(config, services);

  /**
   * Counts a bad (or refused) frame; past BAD_FRAME_LIMIT within 10 s the socket is closed with
   * 4008, which counts against the user and its address (RATE_LIMIT_POLICY_BLOCK_S).
   */
  function strike(connection: Connection, reason: string): void {
    if (!connection.badFrames.strike(limits.badFramesPer10s) || connection.closed) return;
    connection.close(CloseCodes.policy, reason);
    services.rateLimits.policyClosed(connection, connection.principal);
  }

  async function dispatch(connection: Connection, frame: ClientFrame): Promise<void> {
    if (connection.closed) return;
    const handler = handlers[frame.type] as FrameHandler<typeof frame.type>;
    try {
      await services.rateLimits.withRequestSlot(connection.principal, () => Promise.resolve(handler(connection, frame, services)));
    } catch (error) {
      const failure = classifyFailure(error);
      // A RequestError is an answer; anything else that classifies as internal is a bug to log.
      if (failure !== error && failure.code === 'internal_error') {
        connection.log.error({ err: error, frame_type: frame.type }, 'frame handler failed');
      }
      connection.sendError(frame.id, failure.code, failure.message, failure.retryAfterMs, failure.details);
    }
  }

  /** The uWS `message` callback's work for one frame. The ArrayBuffer is only valid during this call. */
  return function intake(connection: Connection, message: ArrayBuffer, isBinary: boolean): void {
    // Frames already on their way when the socket was closed (4008, 1009) are not looked at.
    if (connection.closed) return;
    const waitMs = connection.frames.admit(perSecond);
    if (waitMs > 0) {
      // Not parsed: the id, if any, comes from the frame's first bytes.
      const refusal = tooManyFrames(perSecond, waitMs);
      connection.sendError(isBinary ? undefined : peekFrameId(message), refusal.code, refusal.message, refusal.retryAfterMs);
      strike(connection, 'too many frames');
      return;
    }
    if (isBinary) {
      connection.sendError(undefined, 'binary_not_supported', 'Binary frames are not supported; send JSON text frames.');
      strike(connection, 'too many invalid frames');
      return;
    }
    if (message.byteLength > limits.maxFrameBytes) {
      connection.close(CloseCodes.too_large, tooLargeReason(limits.maxFrameBytes));
      return;
    }
    const text = Buffer.from(message).toString('utf8');
    // An agui.v1 socket speaks AG-UI: its own frames, parsed and handled apart (./agui-intake.ts).
    if (connection instanceof AguiConnection) {
      agui(connection, text, strike);
      return;
    }
    admitFrame(connection, parseClientFrame(text), dispatch, limits.maxQueuedFrames, strike);
  };
}
