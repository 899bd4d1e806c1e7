/**
 * The uWebSockets.js gateway: handshake auth on GET /v1/ws, frame validation and dispatch, health
 * routes. It stays thin: uWS callbacks hand off to the auth module, the handler table and the
 * fan-out.
 */
import uWS from 'uWebSockets.js';
import type { HttpRequest, HttpResponse, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { CloseCodes, PROTOCOL } from '../protocol/codes.js';
import { parseClientFrame } from '../protocol/validate.js';
import type { ClientFrame } from '../protocol/frames.js';
import { newId } from '../db/ids.js';
import { AuthError, extractCredentials } from './auth.js';
import { Connection, type ConnectionData } from './connection.js';
import { handlers } from './handlers/index.js';
import { type GatewayServices, type FrameHandler } from './handlers/context.js';
import { isConnectionError, RequestError } from './errors.js';
import { sendJson, watchAborted } from './http.js';
import { ThreadFanout } from './thread-fanout.js';
import { CorkHolder } from './cork-holder.js';
import { createRestKit } from './rest/rest-kit.js';
import { mountRoutes } from './rest/routes.js';
import { openApiDocument } from './rest/openapi.js';
import { retryAfterSeconds, tooManyFrames } from './rate-limits/index.js';
import type { Config } from './config.js';
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

export type GatewayDeps = Omit<GatewayServices, 'fanout' | 'log'> & {
  log: Logger;
  checkReady: () => Promise<void>;
};

export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const app = uWS.App();
  const log = deps.log;
  const fanout = new ThreadFanout(app, deps.broker, deps.db, log);
  const services: GatewayServices = { ...deps, fanout };
  const connections = new Set<Connection>();
  const corkHolder = new CorkHolder(app, log);
  const maxBuffered = config.limits.maxBufferedBytes;

  app.ws<ConnectionData>('/v1/ws', {
    // Our own limit (closing with 1009) sits below uWS's, which would close with 1006.
    maxPayloadLength: Math.max(config.limits.maxFrameBytes * 4, 1024 * 1024),
    // uWS skips a subscriber past maxBackpressure without telling anyone; keep it far above our
    // own bound, which closes the socket with 1013 instead.
    maxBackpressure: Math.min(maxBuffered * 64, 2 ** 31 - 1),
    idleTimeout: config.limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    drain: (ws) => ws.getUserData().connection.onDrain(),
    upgrade: (res, req, context) => upgrade(res, req, context),
    open: (ws) => {
      const connection = ws.getUserData().connection;
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
    },
    message: (ws, message, isBinary) => {
      const connection = ws.getUserData().connection;
      metrics.frameIn(message.byteLength);
      const waitMs = connection.admitFrame(config.rateLimits.framesPerSecond);
      if (waitMs > 0) {
        refuseFrame(connection, message, isBinary, waitMs);
        return;
      }
      if (isBinary) {
        connection.sendError(undefined, 'binary_not_supported', 'Binary frames are not supported; send JSON text frames.');
        strike(connection, 'too many invalid frames');
        return;
      }
      if (message.byteLength > config.limits.maxFrameBytes) {
        connection.close(CloseCodes.too_large, `frame over ${config.limits.maxFrameBytes} bytes`);
        return;
      }
      // The ArrayBuffer is only valid during this callback: decode before anything async.
      const parsed = parseClientFrame(Buffer.from(message).toString('utf8'));
      if (!parsed.ok) {
        connection.sendError(parsed.id, parsed.code, parsed.message);
        strike(connection, 'too many invalid frames');
        return;
      }
      void dispatch(connection, parsed.frame);
    },
    close: (ws, code) => {
      const connection = ws.getUserData().connection;
      connection.markClosed();
      connections.delete(connection);
      metrics.connectionClosed(code);
      deps.rateLimits.releaseConnection(connection.id);
      connection.log.debug({ code }, 'disconnected');
      void fanout.dropConnection(connection).catch((error) => log.warn({ err: error }, 'cleanup after close failed'));
    },
  });

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // Everything needed from req is copied now: req is invalid after the first await.
    const key = req.getHeader('sec-websocket-key');
    const protocolHeader = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const ticket = req.getQuery('ticket') ?? '';
    const credentials = extractCredentials(req.getHeader('authorization'), protocolHeader, req.getQuery('access_token') ?? '');
    // Without onAborted, a client that leaves during verification would crash the process.
    const state = watchAborted(res);
    if (origin && config.allowedOrigins.length > 0 && !config.allowedOrigins.includes(origin)) {
      sendJson(res, 403, { code: 'forbidden', message: 'This origin may not open the socket (ALLOWED_ORIGINS).' });
      return;
    }
    if (!credentials.token && !ticket) {
      sendJson(res, 401, {
        code: 'unauthenticated',
        message: 'A token is required: Authorization: Bearer <jwt>, a bearer.<jwt> subprotocol, ?access_token=, or ?ticket= from POST /v1/ws-ticket.',
      });
      return;
    }
    const authenticate = credentials.token
      ? deps.verifyToken(credentials.token)
      : services.tickets.redeem(ticket).then((principal) => {
          if (!principal) throw new AuthError('unauthenticated', 'The ticket is invalid, expired or already used; get a new one from POST /v1/ws-ticket.');
          if (principal.expiresAt.getTime() <= Date.now()) throw new AuthError('token_expired', 'The token behind this ticket has expired.');
          return principal;
        });
    authenticate.then(
      async (principal) => {
        if (state.aborted) return;
        const id = newId('c');
        // RATE_LIMIT_CONNECTIONS_PER_USER, across gateways: refused before any upgrade.
        const refusal = await deps.rateLimits.acquireConnection(principal, id).catch((error: unknown) => {
          log.warn({ err: error }, 'connection limit not checked');
          return undefined;
        });
        if (refusal) {
          const body = { code: refusal.code, message: refusal.message, retry_after_ms: refusal.retryAfterMs };
          sendJson(res, 429, body, state, { 'retry-after': retryAfterSeconds(refusal.retryAfterMs ?? 0) });
          return;
        }
        if (state.aborted) {
          deps.rateLimits.releaseConnection(id);
          return;
        }
        const connection = new Connection(
          id,
          principal,
          log.child({ connection_id: id, user_id: principal.userId, workspace_id: principal.workspaceId }),
          maxBuffered,
        );
        corkHolder.upgrade(res, () => res.upgrade<ConnectionData>({ connection }, key, credentials.protocol, extensions, context));
        // uWS runs `open` inside upgrade(); a socket that did not open will never close either.
        if (!connection.ws) deps.rateLimits.releaseConnection(id);
      },
      (error: unknown) => {
        if (!(error instanceof AuthError)) log.error({ err: error }, 'upgrade authentication failed unexpectedly');
        const body = error instanceof AuthError
          ? { code: error.code, message: error.message }
          : isConnectionError(error)
            ? { code: 'unavailable', message: 'Authentication is temporarily unavailable; retry shortly.' }
            : { code: 'unauthenticated', message: 'The token could not be verified.' };
        sendJson(res, body.code === 'unavailable' ? 503 : 401, body, state);
      },
    );
  }

  /**
   * A frame over RATE_LIMIT_FRAMES_PER_SEC: answered `rate_limited` (with its id when it has one)
   * and counted as a bad frame, so a client that keeps hammering is closed with 4008.
   */
  function refuseFrame(connection: Connection, message: ArrayBuffer, isBinary: boolean, waitMs: number): void {
    let id: string | undefined;
    if (!isBinary && message.byteLength <= config.limits.maxFrameBytes) {
      const parsed = parseClientFrame(Buffer.from(message).toString('utf8'));
      id = parsed.ok ? parsed.frame.id : parsed.id;
    }
    const refusal = tooManyFrames(config.rateLimits.framesPerSecond, waitMs);
    connection.sendError(id, refusal.code, refusal.message, refusal.retryAfterMs);
    strike(connection, 'too many frames');
  }

  /** Counts a bad (or refused) frame; past BAD_FRAME_LIMIT within 10 s the socket is closed with 4008. */
  function strike(connection: Connection, reason: string): void {
    if (connection.countBadFrame(config.limits.badFramesPer10s)) connection.close(CloseCodes.policy, reason);
  }

  async function dispatch(connection: Connection, frame: ClientFrame): Promise<void> {
    const handler = handlers[frame.type] as FrameHandler<typeof frame.type>;
    try {
      await handler(connection, frame, services);
    } catch (error) {
      if (error instanceof RequestError) {
        connection.sendError(frame.id, error.code, error.message, error.retryAfterMs);
        return;
      }
      const unavailable = isConnectionError(error);
      connection.log.error({ err: error, frame_type: frame.type }, 'frame handler failed');
      connection.sendError(
        frame.id,
        unavailable ? 'unavailable' : 'internal_error',
        unavailable ? 'A backing service is unreachable; retry shortly.' : 'Internal server error.',
        unavailable ? 1000 : undefined,
      );
    }
  }

  const kit = createRestKit(app, { verifyToken: deps.verifyToken, log, maxBodyBytes: config.limits.maxFrameBytes, corsOrigin: config.corsOrigin });
  mountRoutes(kit, services);

  app.get('/v1/openapi.json', (res) => sendJson(res, 200, openApiDocument()));
  // CORS preflight for browsers calling the REST mirror with a bearer token (no cookies involved).
  app.options('/*', (res) => {
    res.cork(() => {
      res
        .writeStatus('204 No Content')
        .writeHeader('access-control-allow-origin', config.corsOrigin)
        .writeHeader('access-control-allow-methods', 'GET, POST, PATCH, DELETE, OPTIONS')
        .writeHeader('access-control-allow-headers', 'authorization, content-type')
        .writeHeader('access-control-max-age', '600')
        .end();
    });
  });

  const health = (res: HttpResponse) => sendJson(res, 200, { status: 'ok' });
  app.get('/health', health);
  app.get('/live', health);
  app.get('/ready', (res) => {
    const state = watchAborted(res);
    deps.checkReady().then(
      () => sendJson(res, 200, { status: 'ready' }, state),
      (error: unknown) => sendJson(res, 503, { status: 'unavailable', reason: String((error as Error)?.message ?? error) }, state),
    );
  });
  app.get('/metrics', (res) => {
    const state = watchAborted(res);
    void renderMetrics().then((text) => {
      if (!state.aborted) res.cork(() => res.writeHeader('content-type', METRICS_CONTENT_TYPE).end(text));
    }, () => sendJson(res, 503, { code: 'unavailable', message: 'Metrics collection failed.' }, state));
  });
  app.any('/*', (res) => sendJson(res, 404, { code: 'not_found', message: 'No such route.' }));

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`PORT: cannot listen on ${config.host}:${config.port} (in use or not permitted)`));
    });
  });
  const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
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
