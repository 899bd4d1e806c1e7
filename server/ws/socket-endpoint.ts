/**
 * The WebSocket endpoint, GET /v1/ws: uWS's callbacks for it, each behind the guard (an exception
 * closes the socket concerned with 1011, never the process), handing off at once to the handshake
 * (./upgrade.ts), the frame intake (./frame-intake.ts), the connection and the fan-out. It owns
 * the set of open sockets.
 */
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import { CloseCodes, PROTOCOL } from '../../protocol/codes.js';
import type { Config } from '../../config/config.js';
import { metrics } from '../../metrics/index.js';
import type { GatewayServices } from '../handlers/context.js';
import type { CorkHolder } from '../cork-holder.js';
import { errorBody } from '../errors.js';
import { guard } from '../guard.js';
import { sendJson } from '../http.js';
import type { Connection, SocketData } from './connection.js';
import { createFrameIntake } from './frame-intake.js';
import { sendRefusal } from './handshake-refusal.js';
import { createUpgradeHandler } from './upgrade.js';

export interface SocketEndpoint {
  /** The sockets open on this gateway. */
  readonly connections: ReadonlySet<Connection>;
  /** Closes every open socket with 1001 (the gateway is going away). */
  closeAll(): void;
}

export interface SocketEndpointOptions {
  /** Holds the cork of asynchronous upgrades (../cork-holder.ts). */
  corkHolder: CorkHolder;
  /** The gateway is shutting down: handshakes still verifying are refused, not upgraded. */
  closing: () => boolean;
}

export function mountSocketEndpoint(app: TemplatedApp, config: Readonly<Config>, services: GatewayServices, options: SocketEndpointOptions): SocketEndpoint {
  const { log, rateLimits, fanout } = services;
  const connections = new Set<Connection>();
  const maxBuffered = config.limits.maxBufferedBytes;
  const upgrade = createUpgradeHandler({
    verifyToken: services.verifyToken,
    tickets: services.tickets,
    rateLimits,
    corkHolder: options.corkHolder,
    allowedOrigins: config.allowedOrigins,
    maxBufferedBytes: maxBuffered,
    log,
    closing: options.closing,
  });
  const intake = createFrameIntake(config, services);
  const onSocketError = (error: unknown, ws: WebSocket<SocketData>) => ws.getUserData().connection?.fail(error);

  app.ws<SocketData>('/v1/ws', {
    // Our own limit (closing with 1009) sits below uWS's, which would close with 1006.
    maxPayloadLength: Math.max(config.limits.maxFrameBytes * 4, 1024 * 1024),
    // uWS skips a subscriber past maxBackpressure without telling anyone; keep it far above our
    // own bound, which closes the socket with 1013 instead.
    maxBackpressure: Math.min(maxBuffered * 64, 2 ** 31 - 1),
    idleTimeout: config.limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    drain: guard(log, 'ws drain', (ws: WebSocket<SocketData>) => ws.getUserData().connection?.onDrain(), onSocketError),
    upgrade: guard(log, 'ws upgrade', upgrade, (_error, res: HttpResponse) => {
      // Answering may fail too if the request is gone; the guard logs that.
      sendJson(res, 500, errorBody('internal_error', 'Internal server error.'));
    }),
    open: guard(log, 'ws open', (ws: WebSocket<SocketData>) => {
      const { connection, refusal } = ws.getUserData();
      if (!connection) {
        // A refusal for a client that cannot read HTTP answers: say why, then close with the code.
        if (refusal) sendRefusal(ws, refusal);
        return;
      }
      connection.ws = ws;
      connections.add(connection);
      metrics.connectionOpened();
      connection.sendFrame('session.ready', {
        connection_id: connection.id,
        user_id: connection.principal.userId,
        workspace_id: connection.principal.workspaceId,
        protocol: PROTOCOL,
        server_time: new Date().toISOString(),
        token_expires_at: connection.principal.expiresAt.toISOString(),
      });
      connection.token.extendUntil(connection.principal.expiresAt);
      // A child logger per socket costs more than the rest of an idle socket: made only to log.
      if (log.isLevelEnabled('debug')) connection.log.debug('connected');
    }, onSocketError),
    message: guard(log, 'ws message', (ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean) => {
      const connection = ws.getUserData().connection;
      if (!connection) return;
      metrics.frameIn(message.byteLength);
      intake(connection, message, isBinary);
    }, onSocketError),
    close: guard(log, 'ws close', (ws: WebSocket<SocketData>, code: number) => {
      const connection = ws.getUserData().connection;
      if (!connection) return;
      connection.markClosed();
      if (!connections.delete(connection)) return;
      metrics.connectionClosed(code);
      rateLimits.releaseConnection(connection.id);
      if (log.isLevelEnabled('debug')) connection.log.debug({ code }, 'disconnected');
      void fanout.dropConnection(connection).catch((error) => log.warn({ err: error }, 'cleanup after close failed'));
    }),
  });

  return {
    connections,
    closeAll() {
      for (const connection of [...connections]) connection.close(CloseCodes.going_away, 'server going away');
    },
  };
}
