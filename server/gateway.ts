/**
 * The uWebSockets.js gateway, assembled: the WebSocket endpoint on GET /v1/ws (./ws/: handshake,
 * connections, frame intake; ./fanout/: thread events to sockets) and every HTTP route from the one
 * route table (./rest/, mounted by ./http/). It stays thin: it builds the parts, listens, and
 * closes them in order.
 */
import { uws } from './uws.js';
import type { TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { type GatewayServices } from './handlers/context.js';
import { mountSocketEndpoint } from './ws/socket-endpoint.js';
import { BatchedReads } from './batched-reads.js';
import { ReadRouting } from '../db/read-routing.js';
import { ThreadFanout } from './fanout/thread-fanout.js';
import { CorkHolder } from './cork-holder.js';
import { mountFallback } from './http/fallback.js';
import { mountRoutes, type RouterOptions } from './http/router.js';
import { asyncApiDocument, openApiDocument, routeTable, type RouteDeps } from './rest/index.js';
import { ConfigError, type Config } from '../config/config.js';

export interface Gateway {
  port: number;
  fanout: ThreadFanout;
  connectionCount(): number;
  /** Per-user socket slots this gateway holds (RATE_LIMIT_CONNECTIONS_PER_USER); back to 0 with the sockets. */
  connectionSlotCount(): number;
  /** Stops accepting, closes every socket with 1001. Safe to call twice. */
  close(): Promise<void>;
}

export type GatewayDeps = Omit<GatewayServices, 'fanout' | 'reads' | 'log' | 'limits' | 'routing'> & {
  log: Logger;
  /** Where clients' reads go (DATABASE_READ_URL). @defaultValue all to `db` */
  routing?: ReadRouting;
  checkReady: () => Promise<void>;
  /** The generated development secret, in embedded development mode only (serves GET /dev/token to this machine). */
  devTokenSecret?: string;
};

export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const uWS = uws();
  const app = uWS.App();
  const log = deps.log;
  const routing = deps.routing ?? new ReadRouting(deps.db);
  const reads = new BatchedReads(deps.db, undefined, routing);
  const fanout = new ThreadFanout(app, deps.broker, reads, log, (connection, read) =>
    deps.rateLimits.withRequestSlot(connection.principal, read, { patient: true }),
  );
  const services: GatewayServices = {
    ...deps,
    fanout,
    reads,
    routing,
    limits: {
      maxSubscriptions: config.limits.maxSubscriptions,
      searchTimeoutMs: config.database.searchTimeoutMs,
    },
  };
  const corkHolder = new CorkHolder(app, log);
  const sockets = mountSocketEndpoint(app, config, services, { corkHolder, closing: () => closing !== undefined });

  // Every HTTP route, from the one table (server/rest/index.ts): REST, health, metrics, documents, web.
  const router: RouterOptions = {
    log,
    corsOrigin: config.corsOrigin,
    maxBodyBytes: config.limits.maxFrameBytes,
    verifyToken: deps.verifyToken,
    rateLimits: deps.rateLimits,
  };
  let openapi: object | undefined;
  const routeDeps: RouteDeps = {
    services,
    checkReady: deps.checkReady,
    ...(deps.devTokenSecret
      ? { devToken: { secret: deps.devTokenSecret, workspaceClaim: config.auth.workspaceClaim, issuer: config.auth.issuer, audience: config.auth.audience } }
      : {}),
    documents: {
      openapi: () => (openapi ??= openApiDocument(mounted)),
      asyncapi: (host) => asyncApiDocument(host),
    },
  };
  const mounted = mountRoutes(app, routeTable, routeDeps, router);
  mountFallback(app, mounted, router);

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
    connectionCount: () => sockets.connections.size,
    connectionSlotCount: () => services.rateLimits.connectionSlotCount(),
    close() {
      closing ??= (async () => {
        uWS.us_listen_socket_close(listenSocket);
        corkHolder.close();
        sockets.closeAll();
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
