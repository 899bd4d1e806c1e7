/**
 * The gateway's route table: every HTTP route, declared once, by resource. The router
 * (server/http/router.ts) mounts it; the OpenAPI document is generated from it. To add a route,
 * add one entry to the resource's file (or a new file listed here).
 */
import pkg from '../../package.json' with { type: 'json' };
import { PROTOCOL } from '../../protocol/codes.js';
import { LIMITS } from '../../protocol/limits.js';
import { buildAsyncApi } from '../../protocol/asyncapi.js';
import { buildOpenApi } from '../http/openapi.js';
import type { Route } from '../http/route.js';
import { agentRoutes } from './agents.routes.js';
import { aguiRoutes } from './agui.routes.js';
import { aiSdkRoutes } from './ai-sdk.routes.js';
import { components } from './components.js';
import type { RouteDeps } from './deps.js';
import { messageRoutes } from './messages.routes.js';
import { runRoutes } from './runs.routes.js';
import { searchRoutes } from './search.routes.js';
import { systemRoutes } from './system.routes.js';
import { threadRoutes } from './threads.routes.js';
import { ticketRoutes } from './tickets.routes.js';
import { webRoutes } from './web.routes.js';

export type { RouteDeps } from './deps.js';

export const routeTable: readonly Route<RouteDeps>[] = [
  ...threadRoutes,
  ...messageRoutes,
  ...runRoutes,
  ...searchRoutes,
  ...ticketRoutes,
  ...agentRoutes,
  ...systemRoutes,
  ...webRoutes,
  ...aguiRoutes,
  ...aiSdkRoutes,
];

const TITLE = 'Conversation gateway';

/** The OpenAPI document of `routes` (the ones a node mounts). */
export function openApiDocument(routes: readonly Route<RouteDeps>[]): object {
  return buildOpenApi(routes, {
    title: TITLE,
    version: pkg.version,
    description:
      `${pkg.description}\n\nThe REST mirror under /v1 offers the same operations, auth and isolation as the ` +
      `WebSocket frames (protocol ${PROTOCOL}, GET /v1/ws, described by GET /v1/asyncapi.json), with the same schemas. ` +
      'Errors are `{code, message, retryable, retry_after_ms?}` with a status that matches the code. Content is at most ' +
      `${LIMITS.contentChars} characters; ids at most ${LIMITS.idLength}.`,
    components,
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'A JWT carrying sub and the workspace claim (the same token as the WebSocket handshake).',
      },
      accessToken: {
        type: 'apiKey',
        in: 'query',
        name: 'access_token',
        description: 'The JWT as a query parameter; accepted by the WebSocket upgrade only.',
      },
    },
  });
}

let asyncapi: { servers: { gateway: object } } | undefined;

/**
 * The AsyncAPI document of the WebSocket protocol, for clients reaching this node at `host` (the
 * Host header of the request for it; anything but a host name or address and port reads localhost).
 */
export function asyncApiDocument(host: string): object {
  asyncapi ??= buildAsyncApi({
    title: `${TITLE}: WebSocket protocol ${PROTOCOL}`,
    version: pkg.version,
    description: `Frames of GET /v1/ws, generated from the schemas the gateway validates with. Each schema is also served alone at GET /v1/schemas/<name>.json.`,
    host: 'localhost',
  }) as typeof asyncapi & object;
  const gateway = { ...asyncapi.servers.gateway, host: /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? host : 'localhost' };
  return { ...asyncapi, servers: { gateway } };
}
