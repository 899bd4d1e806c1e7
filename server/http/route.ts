/**
 * One HTTP route, declared once: method, path, the schemas of its path, query and body (with their
 * defaults), its answers per status, its handler and its flags. The router (./router.ts) mounts a
 * table of these on uWS and the OpenAPI document (./openapi.ts) is generated from the same table.
 *
 * The handler's `params`, `query` and `body` are typed from their schemas (json-schema-to-ts'
 * `FromSchema`): a handler that reads a field its schema does not declare does not compile.
 */
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import { resultSchemas } from '../../protocol/resources.js';
import type { Principal } from '../auth.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The schema of a route's path or query parameters, or of its body: an object. */
export interface ObjectSchema {
  readonly type: 'object';
  readonly properties: Readonly<Record<string, object>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
}

/** One documented answer: its media types (with their schemas), and headers. */
export interface ResponseDoc {
  description: string;
  /** Media type → schema (`{}` when the body has no schema, e.g. a script). */
  content?: Record<string, object>;
  headers?: Record<string, { description: string; schema: object }>;
}

/** A JSON answer. */
export interface JsonReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}
/** Bytes of a given media type (a bundle, the metrics text). */
export interface RawReply {
  status: number;
  raw: string | Buffer;
  type: string;
  headers?: Record<string, string>;
}
/** One server-sent event. */
export interface SseEvent {
  /** The event's data: a string is sent as it is (line by line), anything else as one line of JSON. */
  data: unknown;
  /** `event:` (the client's event type; none means `message`). */
  event?: string;
  /** `id:` (what EventSource sends back as Last-Event-ID). */
  id?: string | number;
}

/** What a streaming handler writes with (./sse.ts). */
export interface EventWriter {
  /** Resolves true once written (after the socket drained when it had to); false when the client is gone. */
  send(event: SseEvent): Promise<boolean>;
  /** A comment line (`: text`), which clients ignore: a keep-alive, or sends the headers early. */
  comment(text: string): Promise<boolean>;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** True once the client has gone or the stream has ended. */
  readonly closed: boolean;
}

/** A `text/event-stream` answer: `stream` writes events until it returns (or the client leaves); the router ends it. */
export interface StreamReply {
  status: 200;
  stream: (events: EventWriter) => Promise<void>;
  headers?: Record<string, string>;
}
export type Reply = JsonReply | RawReply | StreamReply;

/** What a handler gets: the request, copied off uWS before any await, parsed and validated. */
export interface RouteRequest<P, Q, B, A> {
  params: P;
  query: Q;
  body: B;
  /** The verified caller on a `bearer` route. */
  principal: A;
  /** Aborted when the client goes away (long-polls stop waiting, streams stop writing). */
  signal: AbortSignal;
  /** The Host header. */
  host: string;
  /** The peer's address (no proxy header is trusted). */
  peer: string;
}

type Parsed<S> = S extends JSONSchema ? FromSchema<S> : Record<string, never>;

export interface RouteSpec<P, Q, B, Auth extends 'bearer' | 'none', D> {
  method: HttpMethod;
  /** uWS pattern: `/v1/threads/:id` (documented as `/v1/threads/{id}`). */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  /** `bearer`: a JWT in `Authorization` (401 without); counted by RATE_LIMIT_REST_PER_SEC. */
  auth: Auth;
  /**
   * Counts against RATE_LIMIT_REST_PER_SEC (`bearer` routes only).
   * @defaultValue true
   */
  rateLimited?: boolean;
  /**
   * Counts against RATE_LIMIT_IN_FLIGHT_PER_USER while its handler runs (`bearer` routes only; a
   * stream's writing comes after and holds no slot).
   * @defaultValue true; a long-poll says false: it waits without using the database.
   */
  inFlight?: boolean;
  /** The largest body it reads. @defaultValue the router's (MAX_FRAME_BYTES) */
  maxBodyBytes?: number;
  /** Answers carry `access-control-allow-origin: CORS_ORIGIN`; Allow lists OPTIONS (the preflight). */
  cors?: boolean;
  params?: P;
  query?: Q;
  body?: { schema: B; description: string };
  /** Answers per status; the router's own (400, 401, 413, 429, 500, 503) are added by the document. */
  responses: Record<number, ResponseDoc>;
  /** Whether this node serves the route (e.g. /dev/token only in embedded development mode). @defaultValue always */
  enabled?: (deps: D) => boolean;
  /** Extra OpenAPI fields of the operation (the upgrade's headers, its own security). */
  openapi?: Record<string, unknown>;
  handler: (request: RouteRequest<Parsed<P>, Parsed<Q>, Parsed<B>, Auth extends 'bearer' ? Principal : undefined>, deps: D) => Promise<Reply>;
}

/** A route of the table, its handler's types erased. */
export interface Route<D = unknown> extends Omit<RouteSpec<ObjectSchema, ObjectSchema, ObjectSchema, 'bearer' | 'none', D>, 'handler' | 'params' | 'query' | 'body'> {
  params?: ObjectSchema;
  query?: ObjectSchema;
  body?: { schema: ObjectSchema; description: string };
  handler: (request: RouteRequest<Record<string, unknown>, Record<string, unknown>, unknown, Principal | undefined>, deps: D) => Promise<Reply>;
}

/** Declares a route; the handler is typed from the schemas. */
export function route<D>() {
  return <
    const P extends ObjectSchema | undefined = undefined,
    const Q extends ObjectSchema | undefined = undefined,
    const B extends ObjectSchema | undefined = undefined,
    const Auth extends 'bearer' | 'none' = 'bearer',
  >(spec: RouteSpec<P, Q, B, Auth, D>): Route<D> => spec as unknown as Route<D>;
}

// ---- answers -------------------------------------------------------------------------------------

export const JSON_TYPE = 'application/json';

/** A JSON answer described by `schema`. */
export function json(schema: object, description: string): ResponseDoc {
  return { description, content: { [JSON_TYPE]: schema } };
}

/** A refusal: the Error body (`{code, message, retryable, retry_after_ms?}`). */
export function refusal(description: string): ResponseDoc {
  return json(resultSchemas.error, description);
}

/** A body of `type` with no JSON Schema (a script, the metrics text). */
export function media(type: string, description: string, schema: object = {}): ResponseDoc {
  return { description, content: { [type]: schema } };
}

/** A `text/event-stream` answer (server-sent events; `data` says what each event's data holds). */
export function eventStream(description: string, data: string): ResponseDoc {
  return media('text/event-stream', description, { type: 'string', description: data });
}

/** A JSON answer. */
export function ok(body: unknown, status = 200, headers?: Record<string, string>): JsonReply {
  return { status, body, ...(headers ? { headers } : {}) };
}
