/**
 * GET /v1/openapi.json: an OpenAPI 3.1 description of the REST mirror, the health routes and the
 * WebSocket upgrade. Built from the protocol's own schema objects (requestSchemas, resultSchemas):
 * they sit under components.schemas unchanged and every operation references them with $ref, so
 * the document cannot drift from what the validators enforce. Ranges of query parameters mirror
 * the intParam calls in routes.ts (test/openapi.test.ts checks both against the source).
 */
import pkg from '../../package.json' with { type: 'json' };
import { ErrorCodes, PROTOCOL, type ErrorCode } from '../../protocol/codes.js';
import { LIMITS } from '../../protocol/limits.js';
import { idSchema, requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { MAX_WAIT_MS } from '../operations/events.js';
import { httpStatus } from '../../protocol/codes.js';

const INT32_MAX = 2 ** 31 - 1;
const JSON_TYPE = 'application/json';

// ---- components --------------------------------------------------------------------------------

/** Named schemas. The protocol's objects are used as they are (no copies, nothing stripped). */
const schemas = {
  Id: idSchema,
  // request bodies
  ThreadCreateRequest: requestSchemas['thread.create'],
  ThreadPatchRequest: requestSchemas['thread.patch'],
  MessagePostRequest: requestSchemas['message.post'],
  AgentCreateRequest: requestSchemas['agent.create'],
  AgentUpdateRequest: requestSchemas['agent.update'],
  // results
  Thread: resultSchemas.thread,
  ThreadList: resultSchemas.threadList,
  ThreadDeleted: resultSchemas.threadDeleted,
  ThreadHistory: resultSchemas.history,
  EventPage: resultSchemas.events,
  MessageAccepted: resultSchemas.sent,
  RunCancelled: resultSchemas.cancelled,
  WsTicket: resultSchemas.ticket,
  SearchResults: resultSchemas.search,
  Agent: resultSchemas.agent,
  AgentList: resultSchemas.agentList,
  AgentDeleted: resultSchemas.agentDeleted,
  Error: resultSchemas.error,
  // health routes (server/gateway.ts); no protocol schema exists for these
  Health: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] },
  Ready: { type: 'object', properties: { status: { const: 'ready' } }, required: ['status'] },
  NotReady: {
    type: 'object',
    properties: { status: { const: 'unavailable' }, reason: { type: 'string' } },
    required: ['status', 'reason'],
  },
} as const;

type SchemaName = keyof typeof schemas;

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });

// ---- building blocks ---------------------------------------------------------------------------

/** Error codes a REST or upgrade request can carry (the WebSocket-only ones are left out). */
const REST_CODES = (Object.keys(ErrorCodes) as ErrorCode[]).filter(
  (code) => code !== 'unknown_type' && code !== 'binary_not_supported',
);

function errorResponse(status: number, reason: string) {
  const codes = REST_CODES.filter((code) => httpStatus(code) === status);
  return {
    description: `${reason} Body: Error with code ${codes.map((c) => `\`${c}\``).join(' or ')}.`,
    content: { [JSON_TYPE]: { schema: ref('Error') } },
  };
}

type ErrorReasons = Partial<Record<400 | 403 | 404 | 409 | 429, string>>;

/** 429 `rate_limited`: the body's `retry_after_ms`, and `Retry-After` in whole seconds. */
function rateLimitedResponse(reason: string) {
  return {
    ...errorResponse(429, `${reason} Retry after \`retry_after_ms\` (also the \`Retry-After\` header, in seconds).`),
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } } },
  };
}

/** Error responses of an authenticated route: 401, 500 and 503 always; 413 with a body. */
function errors(reasons: ErrorReasons, hasBody: boolean) {
  const out: Record<string, object> = {};
  if (reasons[400]) out['400'] = errorResponse(400, reasons[400]);
  out['401'] = errorResponse(401, 'No bearer token, or one that does not verify or has expired.');
  if (reasons[403]) out['403'] = errorResponse(403, reasons[403]);
  if (reasons[404]) out['404'] = errorResponse(404, reasons[404]);
  if (reasons[409]) out['409'] = errorResponse(409, reasons[409]);
  if (hasBody) out['413'] = errorResponse(413, 'The body is over the size limit (MAX_FRAME_BYTES).');
  if (reasons[429]) out['429'] = rateLimitedResponse(reasons[429]);
  out['500'] = errorResponse(500, 'An unexpected failure; details are in the server log.');
  out['503'] = errorResponse(
    503,
    'A backing service (database, broker, queue) is unreachable; retry after `retry_after_ms`.',
  );
  return out;
}

const success = (status: number, name: SchemaName, description: string) => ({
  [String(status)]: { description, content: { [JSON_TYPE]: { schema: ref(name) } } },
});

const body = (name: SchemaName, description: string) => ({
  required: true,
  description,
  content: { [JSON_TYPE]: { schema: ref(name) } },
});

const pathId = (what: string) => ({
  name: 'id',
  in: 'path',
  required: true,
  description: `The ${what}'s id.`,
  schema: ref('Id'),
});

const intQuery = (name: string, min: number, max: number, description: string, fallback?: number) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type: 'integer', minimum: min, maximum: max, ...(fallback !== undefined ? { default: fallback } : {}) },
});

const boolQuery = (name: string, description: string) => ({
  name,
  in: 'query',
  required: false,
  description: `${description} \`true\` or \`false\`.`,
  schema: { type: 'boolean' },
});

// ---- operations --------------------------------------------------------------------------------

const notFound = {
  thread: 'No such thread, or it belongs to someone else (the two are indistinguishable).',
  agent: 'No such agent visible to this workspace.',
};
const adminOnly = "The token lacks the admin role (JWT_ADMIN_ROLE, default 'admin'), or the agent is built in and read-only.";

function paths() {
  return {
    '/v1/threads': {
      get: {
        operationId: 'listThreads',
        tags: ['threads'],
        summary: 'List your threads',
        description: 'The caller\'s threads, most recently active first, a page at a time. Pass `next_cursor` back as `cursor` for the next page.',
        parameters: [
          {
            name: 'cursor',
            in: 'query',
            required: false,
            description: 'Opaque cursor: `next_cursor` of the previous page, exactly as received.',
            schema: { type: 'string' },
          },
          intQuery('limit', 1, 100, 'Threads per page.', 20),
          boolQuery('archived', 'List archived threads instead of active ones.'),
        ],
        responses: {
          ...success(200, 'ThreadList', 'A page of threads.'),
          ...errors({ 400: 'A query parameter is out of range, or the cursor is not valid.' }, false),
        },
      },
      post: {
        operationId: 'createThread',
        tags: ['threads'],
        summary: 'Create a thread',
        description: 'Creates a thread bound to an agent (the default agent when `agent_id` is omitted).',
        requestBody: body('ThreadCreateRequest', 'Same schema as the `thread.create` frame payload.'),
        responses: {
          ...success(201, 'Thread', 'The new thread.'),
          ...errors({ 400: 'The body is not valid JSON or breaks the schema.', 404: 'The agent was not found.' }, true),
        },
      },
    },
    '/v1/threads/{id}': {
      parameters: [pathId('thread')],
      get: {
        operationId: 'getThread',
        tags: ['threads'],
        summary: 'Get a thread',
        description: 'One of the caller\'s threads.',
        responses: { ...success(200, 'Thread', 'The thread.'), ...errors({ 404: notFound.thread }, false) },
      },
      patch: {
        operationId: 'updateThread',
        tags: ['threads'],
        summary: 'Rename or (un)archive a thread',
        description: 'Changes the title and/or the archived flag; fields left out stay as they are (an empty body changes nothing).',
        requestBody: body('ThreadPatchRequest', '`thread.update` without `thread_id` (it is in the path).'),
        responses: {
          ...success(200, 'Thread', 'The updated thread.'),
          ...errors({ 400: 'The body is not valid JSON or breaks the schema.', 404: notFound.thread }, true),
        },
      },
      delete: {
        operationId: 'deleteThread',
        tags: ['threads'],
        summary: 'Delete a thread',
        description: 'Deletes the thread with its messages, runs and events; a running turn is told to stop.',
        responses: { ...success(200, 'ThreadDeleted', 'The thread is gone.'), ...errors({ 404: notFound.thread }, false) },
      },
    },
    '/v1/threads/{id}/history': {
      parameters: [pathId('thread')],
      get: {
        operationId: 'getThreadHistory',
        tags: ['threads'],
        summary: 'Page back through a thread\'s events',
        description: 'Stored events before `before_seq` (or the latest), oldest first; `has_more` says whether older ones exist.',
        parameters: [
          intQuery('before_seq', 1, INT32_MAX, 'Only events with a seq below this one (omit for the latest).'),
          intQuery('limit', 1, 500, 'Events per page.', 50),
        ],
        responses: {
          ...success(200, 'ThreadHistory', 'A page of stored events.'),
          ...errors({ 400: 'A query parameter is out of range.', 404: notFound.thread }, false),
        },
      },
    },
    '/v1/threads/{id}/messages': {
      parameters: [pathId('thread')],
      post: {
        operationId: 'postMessage',
        tags: ['messages'],
        summary: 'Send a message (start a turn)',
        description:
          'Records the user message and queues the agent\'s turn, applying the busy policy. Returns at once (202); the reply ' +
          'streams as events: follow them over the WebSocket or with GET /v1/threads/{id}/events. Idempotent on ' +
          '`client_message_id` (a repeat answers `deduplicated: true`).',
        requestBody: body('MessagePostRequest', '`message.send` without `thread_id` (it is in the path).'),
        responses: {
          ...success(202, 'MessageAccepted', 'The message is stored and the run queued.'),
          ...errors(
            {
              400: 'The body is not valid JSON, breaks the schema, or the content holds NUL characters.',
              404: 'The thread (or its agent) was not found.',
              409: 'A run is active and the busy policy is `reject` (`thread_busy`, retry later), or the thread is bound to another agent (`conflict`).',
              429: 'Too many messages this minute (RATE_LIMIT_MESSAGES_PER_MIN, shared with `message.send`) or too many queued and running turns (RATE_LIMIT_RUNS_PER_USER).',
            },
            true,
          ),
        },
      },
    },
    '/v1/threads/{id}/events': {
      parameters: [pathId('thread')],
      get: {
        operationId: 'pollThreadEvents',
        tags: ['threads'],
        summary: 'Long-poll a thread\'s events',
        description:
          'Events with seq above `after_seq`. Answers at once when there are some; otherwise waits up to `wait_ms` for the ' +
          'next one. Loop with `after_seq` = the returned `last_seq`. For clients without WebSockets.',
        parameters: [
          intQuery('after_seq', 0, INT32_MAX, 'Only events with a seq above this one.', 0),
          intQuery('wait_ms', 0, MAX_WAIT_MS, `How long to wait when nothing is new (long-poll), at most ${MAX_WAIT_MS} ms.`, 0),
          intQuery('limit', 1, 1000, 'Most events to return.', 500),
        ],
        responses: {
          ...success(200, 'EventPage', 'New events (possibly none, after waiting).'),
          ...errors({ 400: 'A query parameter is out of range.', 404: notFound.thread }, false),
        },
      },
    },
    '/v1/runs/{id}/cancel': {
      parameters: [pathId('run')],
      post: {
        operationId: 'cancelRun',
        tags: ['runs'],
        summary: 'Cancel a run',
        description:
          'A queued run is cancelled at once (`cancelled`); a running one is signalled to its worker (`cancelling`) and ends ' +
          'with an agent_completed event. Only the thread\'s owner may cancel. No body.',
        responses: {
          ...success(200, 'RunCancelled', 'Cancelled, or cancellation requested.'),
          ...errors({ 404: 'No such run on one of your threads.', 409: 'The run has already finished.' }, false),
        },
      },
    },
    '/v1/ws-ticket': {
      post: {
        operationId: 'createWsTicket',
        tags: ['connect'],
        summary: 'Get a connection ticket',
        description:
          'Trades the bearer token for an opaque ticket, valid for 30 seconds and usable once: open the socket with ' +
          '`/v1/ws?ticket=<ticket>` so a long-lived JWT never goes into a URL. The connection keeps the token\'s expiry. No body.',
        responses: {
          ...success(201, 'WsTicket', 'The ticket and when it expires.'),
          ...errors({}, false),
        },
      },
    },
    '/v1/search': {
      get: {
        operationId: 'searchMessages',
        tags: ['search'],
        summary: 'Search your messages',
        description:
          'Full-text search over the caller\'s own user and assistant messages, best match first, with a highlighted ' +
          'snippet (`<mark>`). `q` uses web-search syntax: words, "quoted phrases", -not, or.',
        parameters: [
          {
            name: 'q',
            in: 'query',
            required: true,
            description: 'The words to search for (trimmed; 1 to 500 characters).',
            schema: requestSchemas.search.properties.q,
          },
          intQuery('limit', 1, 50, 'Most results to return.', 20),
        ],
        responses: {
          ...success(200, 'SearchResults', 'Matches, best first.'),
          ...errors({ 400: '`q` is missing, blank or too long, or `limit` is out of range.' }, false),
        },
      },
    },
    '/v1/agents': {
      get: {
        operationId: 'listAgents',
        tags: ['agents'],
        summary: 'List agents',
        description: 'The workspace\'s agents and the built-in ones (workspace_id null).',
        responses: { ...success(200, 'AgentList', 'Every agent visible to the workspace.'), ...errors({}, false) },
      },
      post: {
        operationId: 'createAgent',
        tags: ['agents'],
        summary: 'Create an agent (admin)',
        description: 'Creates an agent in the caller\'s workspace. Needs the admin role.',
        requestBody: body('AgentCreateRequest', 'Same schema as the `agent.create` frame payload.'),
        responses: {
          ...success(201, 'Agent', 'The new agent.'),
          ...errors({ 400: 'The body is not valid JSON, breaks the schema, or names an unknown tool.', 403: adminOnly }, true),
        },
      },
    },
    '/v1/agents/{id}': {
      parameters: [pathId('agent')],
      get: {
        operationId: 'getAgent',
        tags: ['agents'],
        summary: 'Get an agent',
        description: 'One agent visible to the workspace.',
        responses: { ...success(200, 'Agent', 'The agent.'), ...errors({ 404: notFound.agent }, false) },
      },
      patch: {
        operationId: 'updateAgent',
        tags: ['agents'],
        summary: 'Update an agent (admin)',
        description: 'Changes the given fields of one of the workspace\'s own agents; `null` clears model or temperature. Needs the admin role.',
        requestBody: body('AgentUpdateRequest', 'Same schema as the `agent.update` frame payload.'),
        responses: {
          ...success(200, 'Agent', 'The updated agent.'),
          ...errors(
            { 400: 'The body is not valid JSON, breaks the schema, or names an unknown tool.', 403: adminOnly, 404: notFound.agent },
            true,
          ),
        },
      },
      delete: {
        operationId: 'deleteAgent',
        tags: ['agents'],
        summary: 'Delete an agent (admin)',
        description: 'Soft delete: the agent disappears for new threads; threads bound to it keep working. Needs the admin role.',
        responses: {
          ...success(200, 'AgentDeleted', 'The agent is deleted.'),
          ...errors({ 403: adminOnly, 404: notFound.agent }, false),
        },
      },
    },
    '/v1/ws': {
      get: {
        operationId: 'openWebSocket',
        tags: ['websocket'],
        summary: 'Open the WebSocket (protocol chat.v1)',
        description:
          'The WebSocket upgrade. After 101 the server sends `session.ready`, then JSON text frames `{type, id?, payload}` ' +
          `both ways, as defined by protocol ${PROTOCOL} (protocol/frames.ts, protocol/schemas.ts and protocol/codes.ts; see ` +
          'the README). The token goes in `Authorization: Bearer <jwt>`, or as a `bearer.<jwt>` entry of ' +
          'Sec-WebSocket-Protocol (browsers), or as `?access_token=`; or a single-use `?ticket=` from POST /v1/ws-ticket. ' +
          'A failed handshake answers 401 with an Error body and no upgrade; an Origin not in ALLOWED_ORIGINS gets 403; ' +
          'a user already holding RATE_LIMIT_CONNECTIONS_PER_USER open sockets gets 429.',
        security: [{ bearer: [] }, { accessToken: [] }],
        parameters: [
          { name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } },
          { name: 'Sec-WebSocket-Key', in: 'header', required: true, schema: { type: 'string' } },
          {
            name: 'ticket',
            in: 'query',
            required: false,
            description: 'A connection ticket from POST /v1/ws-ticket (30 s, usable once), instead of a token.',
            schema: { type: 'string' },
          },
          {
            name: 'Sec-WebSocket-Protocol',
            in: 'header',
            required: false,
            description: `Offer \`${PROTOCOL}\`; a \`bearer.<jwt>\` entry carries the token when headers cannot be set.`,
            schema: { type: 'string' },
          },
        ],
        responses: {
          '101': { description: `Switching Protocols: the socket is open and speaks ${PROTOCOL}.` },
          '401': errorResponse(401, 'No token, or one that does not verify or has expired; the socket is not opened.'),
          '403': errorResponse(403, 'The Origin header is not in ALLOWED_ORIGINS.'),
          '429': rateLimitedResponse('The user already has RATE_LIMIT_CONNECTIONS_PER_USER sockets open (across all gateways); the socket is not opened.'),
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        tags: ['meta'],
        summary: 'This document',
        description: 'The OpenAPI 3.1 description of the REST mirror, health routes and WebSocket upgrade.',
        security: [],
        responses: { '200': { description: 'The OpenAPI document.', content: { [JSON_TYPE]: { schema: { type: 'object' } } } } },
      },
    },
    '/health': {
      get: {
        operationId: 'health',
        tags: ['health'],
        summary: 'Health',
        description: 'The process is up and serving HTTP. Same as /live.',
        security: [],
        responses: success(200, 'Health', 'Up.'),
      },
    },
    '/live': {
      get: {
        operationId: 'live',
        tags: ['health'],
        summary: 'Liveness',
        description: 'The process is up and serving HTTP (a liveness probe). Checks no dependency.',
        security: [],
        responses: success(200, 'Health', 'Alive.'),
      },
    },
    '/ready': {
      get: {
        operationId: 'ready',
        tags: ['health'],
        summary: 'Readiness',
        description: 'The node\'s dependencies (database, broker, queue) answer (a readiness probe).',
        security: [],
        responses: {
          ...success(200, 'Ready', 'Ready to serve.'),
          '503': { description: 'A dependency is unreachable.', content: { [JSON_TYPE]: { schema: ref('NotReady') } } },
        },
      },
    },
  };
}

function build(): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Conversation gateway',
      version: pkg.version,
      description:
        `${pkg.description}\n\nThe REST mirror under /v1 offers the same operations, auth and isolation as the ` +
        `WebSocket frames (protocol ${PROTOCOL}, GET /v1/ws), with the same schemas. Errors are \`{code, message, ` +
        'retry_after_ms?}` with a status that matches the code. Content is at most ' +
        `${LIMITS.contentChars} characters; ids at most ${LIMITS.idLength}.`,
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    tags: [
      { name: 'threads' },
      { name: 'messages' },
      { name: 'runs' },
      { name: 'search' },
      { name: 'agents' },
      { name: 'websocket' },
      { name: 'health' },
      { name: 'meta' },
    ],
    paths: paths(),
    components: {
      schemas,
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
    },
  };
}

let document: object | undefined;

/** The document, built on first use and then shared (it is never mutated). */
export function openApiDocument(): object {
  document ??= build();
  return document;
}
