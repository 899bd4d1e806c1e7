/**
 * The node's own routes: health probes, metrics, the published documents and schemas, and the
 * WebSocket's path answered without an upgrade (the upgrade itself is mounted by server/gateway.ts).
 */
import { PROTOCOL } from '../../protocol/codes.js';
import { publishedSchema, publishedSchemaNames } from '../../protocol/published.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from '../../metrics/index.js';
import { errorBody, RequestError } from '../errors.js';
import { json, media, ok, refusal } from '../http/route.js';
import { healthSchema, notReadySchema, readySchema } from './components.js';
import { route } from './deps.js';

const health = (path: string, summary: string, description: string) =>
  route({
    method: 'get',
    path,
    operationId: path === '/health' ? 'health' : 'live',
    tags: ['health'],
    summary,
    description,
    auth: 'none',
    responses: { 200: json(healthSchema, 'Up.') },
    handler: async () => ok({ status: 'ok' }),
  });

const anyDocument = { type: 'object' } as const;

export const systemRoutes = [
  health('/health', 'Health', 'The process is up and serving HTTP. Same as /live. HEAD answers the same without a body.'),
  health('/live', 'Liveness', 'The process is up and serving HTTP (a liveness probe). Checks no dependency.'),
  route({
    method: 'get',
    path: '/ready',
    operationId: 'ready',
    tags: ['health'],
    summary: 'Readiness',
    description: 'The node\'s dependencies (database, broker, queue) answer (a readiness probe).',
    auth: 'none',
    responses: { 200: json(readySchema, 'Ready to serve.'), 503: json(notReadySchema, 'A dependency is unreachable.') },
    handler: async (_request, { checkReady }) =>
      checkReady().then(
        () => ok({ status: 'ready' }),
        (error: unknown) => ok({ status: 'unavailable', reason: String((error as Error)?.message ?? error) }, 503),
      ),
  }),
  route({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tags: ['health'],
    summary: 'Prometheus metrics',
    description: 'This process\'s metrics in the Prometheus text format (prom-client).',
    auth: 'none',
    responses: {
      200: media('text/plain', 'The metrics, text exposition format 0.0.4.', { type: 'string' }),
      503: refusal('Collecting the metrics failed.'),
    },
    handler: async () => {
      const text = await renderMetrics().catch(() => {
        throw new RequestError('unavailable', 'Metrics collection failed.');
      });
      return { status: 200, raw: text, type: METRICS_CONTENT_TYPE };
    },
  }),
  route({
    method: 'get',
    path: '/v1/openapi.json',
    operationId: 'getOpenApi',
    tags: ['meta'],
    summary: 'This document',
    description: 'The OpenAPI 3.1 description of every HTTP route of this node, generated from its route table.',
    auth: 'none',
    responses: { 200: json(anyDocument, 'The OpenAPI document.') },
    handler: async (_request, { documents }) => ok(documents.openapi()),
  }),
  route({
    method: 'get',
    path: '/v1/asyncapi.json',
    operationId: 'getAsyncApi',
    tags: ['meta'],
    summary: 'The WebSocket protocol',
    description: `The AsyncAPI 3 description of GET /v1/ws (protocol ${PROTOCOL}): every frame both ways, generated from the schemas the server validates with.`,
    auth: 'none',
    responses: { 200: json(anyDocument, 'The AsyncAPI document.') },
    handler: async ({ host }, { documents }) => ok(documents.asyncapi(host)),
  }),
  route({
    method: 'get',
    path: '/v1/schemas/:name',
    operationId: 'getSchema',
    tags: ['meta'],
    summary: 'One published JSON Schema',
    description:
      'A JSON Schema of the WebSocket protocol, by name (`<name>.json`, as its `$id` ends): each client and server frame, ' +
      `each thread event, the error, run error and close codes. Names: ${publishedSchemaNames().map((name) => `\`${name}\``).join(', ')}.`,
    auth: 'none',
    params: {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+\\.json$', description: 'The schema\'s name and `.json`.' } },
      required: ['name'],
      additionalProperties: false,
    },
    responses: { 200: json(anyDocument, 'The schema.'), 400: refusal('The name does not end in `.json`.'), 404: refusal('No schema has that name.') },
    handler: async ({ params }) => {
      const schema = publishedSchema(params.name.slice(0, -'.json'.length));
      if (!schema) throw new RequestError('not_found', `No schema is named ${params.name}; GET /v1/asyncapi.json lists them.`);
      return ok(schema);
    },
  }),
  route({
    method: 'get',
    path: '/v1/ws',
    operationId: 'openWebSocket',
    tags: ['websocket'],
    summary: `Open the WebSocket (protocol ${PROTOCOL})`,
    description:
      'The WebSocket upgrade. After 101 the server sends `session.ready`, then JSON text frames `{type, id?, payload}` ' +
      `both ways, as described by GET /v1/asyncapi.json (protocol ${PROTOCOL}). The token goes in ` +
      '`Authorization: Bearer <jwt>`, or as a `bearer.<jwt>` entry of Sec-WebSocket-Protocol (browsers), or as ' +
      '`?access_token=`; or a single-use `?ticket=` from POST /v1/ws-ticket. A failed handshake answers 401 with an ' +
      'Error body and no upgrade; an Origin not in ALLOWED_ORIGINS gets 403; a user already holding ' +
      'RATE_LIMIT_CONNECTIONS_PER_USER open sockets gets 429. A GET without the upgrade headers gets 426.',
    auth: 'none',
    openapi: {
      security: [{ bearer: [] }, { accessToken: [] }],
      parameters: [
        { name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } },
        { name: 'Sec-WebSocket-Key', in: 'header', required: true, schema: { type: 'string' } },
        {
          name: 'Sec-WebSocket-Protocol',
          in: 'header',
          required: false,
          description: `Offer \`${PROTOCOL}\`; a \`bearer.<jwt>\` entry carries the token when headers cannot be set.`,
          schema: { type: 'string' },
        },
        {
          name: 'ticket',
          in: 'query',
          required: false,
          description: 'A connection ticket from POST /v1/ws-ticket (30 s, usable once), instead of a token.',
          schema: { type: 'string' },
        },
      ],
    },
    responses: {
      101: { description: `Switching Protocols: the socket is open and speaks ${PROTOCOL}.` },
      401: refusal('No token, or one that does not verify or has expired; the socket is not opened.'),
      403: refusal('The Origin header is not in ALLOWED_ORIGINS.'),
      426: refusal('A plain GET without `Upgrade: websocket`: connect with a WebSocket client.'),
      429: refusal('The user already has RATE_LIMIT_CONNECTIONS_PER_USER sockets open (across all gateways); the socket is not opened.'),
    },
    // A plain GET of the socket's path (a browser tab, curl without upgrade headers).
    handler: async () => ({
      status: 426,
      body: errorBody('invalid_request', 'This is the WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket).'),
      headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
    }),
  }),
];
