/**
 * The uWebSockets.js gateway: handshake auth on GET /v1/ws, frame validation and dispatch, health
 * routes. It stays thin: uWS callbacks hand off to the auth module, the handler table and the
 * fan-out.
 */
import { uws } from './uws.js';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { CloseCodes, PROTOCOL, refusalReason } from '../protocol/codes.js';
import { type Connection, type SocketData } from './connection.js';
import { type GatewayServices } from './handlers/context.js';
import { errorBody } from './errors.js';
import { guard } from './guard.js';
import { createUpgradeHandler, refusalCloseCode } from './upgrade.js';
import { createFrameIntake } from './frame-intake.js';
import { sendJson, watchAborted } from './http.js';
import { BatchedReads } from './batched-reads.js';
import { ThreadFanout } from './thread-fanout.js';
import { CorkHolder } from './cork-holder.js';
import { createRestKit } from './rest/rest-kit.js';
import { mountRoutes } from './rest/routes.js';
import { openApiDocument } from './rest/openapi.js';
import { ConfigError, type Config } from '../config/config.js';
import { mountWebRoutes } from './web-routes.js';
import { metrics, METRICS_CONTENT_TYPE, renderMetrics } from '../metrics/index.js';

export interface Gateway {
  port: number;
  fanout: ThreadFanout;
  connectionCount(): number;
  /** Per-user socket slots this gateway holds (RATE_LIMIT_CONNECTIONS_PER_USER); back to 0 with the sockets. */
  connectionSlotCount(): number;
  /** Stops accepting, closes every socket with 1001. Safe to call twice. */
  close(): Promise<void>;
}

export type GatewayDeps = Omit<GatewayServices, 'fanout' | 'reads' | 'log' | 'limits'> & {
  log: Logger;
  checkReady: () => Promise<void>;
  /** The generated development secret, in embedded development mode only (serves GET /dev/token to this machine). */
  devTokenSecret?: string;
};

export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const uWS = uws();
  const app = uWS.App();
  const log = deps.log;
  const reads = new BatchedReads(deps.db);
  const fanout = new ThreadFanout(app, deps.broker, reads, log, (connection, read) =>
    deps.rateLimits.withRequestSlot(connection.principal, read, { patient: true }),
  );
  const services: GatewayServices = {
    ...deps,
    fanout,
    reads,
    limits: {
      maxSubscriptions: config.limits.maxSubscriptions,
      searchTimeoutMs: config.database.searchTimeoutMs,
    },
  };
  const connections = new Set<Connection>();
  const corkHolder = new CorkHolder(app, log);
  const maxBuffered = config.limits.maxBufferedBytes;

  const upgrade = createUpgradeHandler({
    verifyToken: deps.verifyToken,
    tickets: deps.tickets,
    rateLimits: deps.rateLimits,
    corkHolder,
    allowedOrigins: config.allowedOrigins,
    maxBufferedBytes: maxBuffered,
    log,
    closing: () => closing !== undefined,
  });
  const intake = createFrameIntake(config, services);
  // Every callback behind the guard: an exception closes the socket concerned (1011), never the process.
  const onSocketError = (_error: unknown, ws: WebSocket<SocketData>) => ws.getUserData().connection?.fail(_error);

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
        if (refusal) {
          ws.send(JSON.stringify({ type: 'error', payload: errorBody(refusal.code, refusal.message, refusal.retryAfterMs) }), false);
          ws.end(refusalCloseCode(refusal.code), refusalReason(refusal.code, refusal.retryAfterMs));
        }
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
      connection.extendUntil(connection.principal.expiresAt);
      connection.log.debug('connected');
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
      deps.rateLimits.releaseConnection(connection.id);
      connection.log.debug({ code }, 'disconnected');
      void fanout.dropConnection(connection).catch((error) => log.warn({ err: error }, 'cleanup after close failed'));
    }),
  });

  const kit = createRestKit(app, {
    verifyToken: deps.verifyToken,
    log,
    maxBodyBytes: config.limits.maxFrameBytes,
    corsOrigin: config.corsOrigin,
    rateLimits: deps.rateLimits,
  });
  mountRoutes(kit, services);

  app.get('/v1/openapi.json', guard(log, 'openapi', (res: HttpResponse) => sendJson(res, 200, openApiDocument())));
  // A plain GET of the socket's path (a browser tab, curl without upgrade headers).
  app.get('/v1/ws', guard(log, 'ws without upgrade', (res: HttpResponse) => {
    sendJson(res, 426, errorBody('invalid_request', 'This is the WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket).'), undefined, {
      upgrade: 'websocket',
      'sec-websocket-version': '13',
    });
  }));
  // CORS preflight for browsers calling the REST mirror with a bearer token (no cookies involved).
  app.options('/*', guard(log, 'CORS preflight', (res: HttpResponse) => {
    res.cork(() => {
      res
        .writeStatus('204 No Content')
        .writeHeader('access-control-allow-origin', config.corsOrigin)
        .writeHeader('access-control-allow-methods', 'GET, POST, PATCH, DELETE, OPTIONS')
        .writeHeader('access-control-allow-headers', 'authorization, content-type')
        .writeHeader('access-control-max-age', '600')
        .end();
    });
  }));

  // Health: GET and HEAD (load balancers often probe with HEAD; same status, no body).
  const health = (res: HttpResponse) => sendJson(res, 200, { status: 'ok' });
  const ready = (res: HttpResponse, head = false) => {
    const state = watchAborted(res);
    deps.checkReady().then(
      () => sendJson(res, 200, { status: 'ready' }, state, {}, head),
      (error: unknown) => sendJson(res, 503, { status: 'unavailable', reason: String((error as Error)?.message ?? error) }, state, {}, head),
    );
  };
  for (const path of ['/health', '/live']) {
    app.get(path, guard(log, path, health));
    app.head(path, guard(log, path, (res: HttpResponse) => sendJson(res, 200, { status: 'ok' }, undefined, {}, true)));
  }
  app.get('/ready', guard(log, '/ready', (res: HttpResponse) => ready(res)));
  app.head('/ready', guard(log, '/ready', (res: HttpResponse) => ready(res, true)));
  mountWebRoutes(app, {
    log, devTokenSecret: deps.devTokenSecret, workspaceClaim: config.auth.workspaceClaim,
    issuer: config.auth.issuer, audience: config.auth.audience, corsOrigin: config.corsOrigin,
  });
  app.get('/metrics', guard(log, '/metrics', (res: HttpResponse) => {
    const state = watchAborted(res);
    void renderMetrics().then((text) => {
      if (!state.aborted) res.cork(() => res.writeHeader('content-type', METRICS_CONTENT_TYPE).end(text));
    }, () => sendJson(res, 503, errorBody('unavailable', 'Metrics collection failed.'), state));
  }));
  const fixed: Record<string, string[]> = {
    '/metrics': ['GET'],
    '/health': ['GET', 'HEAD'], '/live': ['GET', 'HEAD'], '/ready': ['GET', 'HEAD'], '/v1/openapi.json': ['GET'], '/v1/ws': ['GET'],
  };
  app.any('/*', guard(log, 'fallback', (res: HttpResponse, req: HttpRequest) => {
    const path = req.getUrl();
    const allowed = fixed[path] ?? kit.methodsFor(path);
    if (allowed.length > 0) {
      sendJson(res, 405, errorBody('invalid_request', `${req.getMethod().toUpperCase()} is not supported on ${path}; use ${allowed.join(', ')}.`), undefined, {
        allow: allowed.join(', '),
      });
      return;
    }
    sendJson(res, 404, errorBody('not_found', 'No such route.'));
  }));

  // Exclusive: uWS would otherwise listen with SO_REUSEPORT and share a port that is in use with
  // whatever holds it (requests would reach either server at random).
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    listenExclusive(app, config.host, config.port, (socket) => {
      if (socket) resolve(socket);
      else reject(new ConfigError('PORT', `cannot listen on ${config.host}:${config.port}: the port is in use (or not permitted); stop what holds it or set another PORT`));
    });
  });
  const port = uWS.us_socket_local_port(listenSocket as unknown as us_socket);
  await corkHolder.start(port, config.host);

  let closing: Promise<void> | undefined;
  return {
    port,
    fanout,
    connectionCount: () => connections.size,
    connectionSlotCount: () => services.rateLimits.connectionSlotCount(),
    close() {
      closing ??= (async () => {
        uWS.us_listen_socket_close(listenSocket);
        corkHolder.close();
        for (const connection of [...connections]) connection.close(CloseCodes.going_away, 'server going away');
      })();
      return closing;
    },
  };
}

/**
 * `app.listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, cb)`: the native build takes the options
 * argument with a host too, but its typings only declare it without one.
 */
function listenExclusive(app: TemplatedApp, host: string, port: number, cb: (socket: us_listen_socket | false) => void): void {
  const exclusive = (uws() as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
  (app.listen as unknown as (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => void).call(app, host, port, exclusive, cb);
}
