/**
 * The OpenAPI 3.1 document of a route table, generated: every mounted route's method, path,
 * parameters (from its path and query schemas), body and answers, plus the answers the router
 * itself gives (400 for a bad body or parameter, 401 without a token, 413, 429, 500, 503). A
 * schema that is one of the named components is written as a `$ref` to it.
 */
import { ErrorCodes, httpStatus, type ErrorCode } from '../../protocol/codes.js';
import { resultSchemas } from '../../protocol/resources.js';
import { JSON_TYPE, type ResponseDoc, type Route } from './route.js';

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
  /** Named schemas, written under components.schemas and referenced by identity. */
  components: Record<string, object>;
  securitySchemes: Record<string, object>;
}

/** Codes a REST request can carry (the WebSocket-only ones are left out). */
const HTTP_CODES = (Object.keys(ErrorCodes) as ErrorCode[]).filter((code) => code !== 'unknown_type' && code !== 'binary_not_supported' && code !== 'invalid_frame');

const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before retrying (with `retry_after_ms` in the body).', schema: { type: 'integer', minimum: 0 } } };

/** The router's own answers to a route, by status. */
function routerAnswers(route: Route<never>): Record<number, ResponseDoc> {
  const out: Record<number, ResponseDoc> = {};
  const error = (description: string, headers?: ResponseDoc['headers']): ResponseDoc => ({
    description, content: { [JSON_TYPE]: resultSchemas.error }, ...(headers ? { headers } : {}),
  });
  if (route.body) out[400] = error('The body is not valid JSON or breaks the schema.');
  else if (route.params || route.query) out[400] = error('A path or query parameter is not valid (the message names it).');
  if (route.auth === 'bearer') {
    out[401] = error('No bearer token, or one that does not verify or has expired.');
    const limits = [
      ...(route.rateLimited !== false ? ['too many requests (RATE_LIMIT_REST_PER_SEC)'] : []),
      ...(route.inFlight !== false ? ['too many at once (RATE_LIMIT_IN_FLIGHT_PER_USER)'] : []),
    ];
    if (limits.length > 0) out[429] = error(`${limits.join(' or ')}.`.replace(/^t/, 'T'), RETRY_AFTER);
  }
  if (route.body) out[413] = error('The body is over the size limit (MAX_FRAME_BYTES).');
  out[500] = error('An unexpected failure; details are in the server log.');
  if (route.auth === 'bearer') out[503] = error('A backing service (database, broker, queue) is unreachable; retry after `retry_after_ms`.', RETRY_AFTER);
  return out;
}

export function buildOpenApi(routes: readonly Route<never>[], info: DocumentInfo): object {
  const names = new Map<object, string>(Object.entries(info.components).map(([name, schema]) => [schema, name]));
  const ref = (schema: object) => (names.has(schema) ? { $ref: `#/components/schemas/${names.get(schema)}` } : schema);

  const response = (status: number, doc: ResponseDoc) => {
    const content = doc.content && Object.fromEntries(Object.entries(doc.content).map(([type, schema]) => [type, { schema: ref(schema) }]));
    const isError = doc.content?.[JSON_TYPE] === resultSchemas.error;
    const codes = HTTP_CODES.filter((code) => httpStatus(code) === status);
    const description = isError && codes.length > 0 ? `${doc.description} Body: Error with code ${codes.map((c) => `\`${c}\``).join(' or ')}.` : doc.description;
    return { description, ...(doc.headers ? { headers: doc.headers } : {}), ...(content ? { content } : {}) };
  };

  const parameters = (route: Route<never>) => {
    const out: object[] = [];
    for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
      if (!schema) continue;
      for (const [name, property] of Object.entries(schema.properties)) {
        const { description } = property as { description?: string };
        out.push({
          name,
          in: where,
          required: where === 'path' || (schema.required ?? []).includes(name),
          ...(description ? { description } : {}),
          schema: ref(property),
        });
      }
    }
    return out;
  };

  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z_]\w*)/g, '{$1}');
    const answers = { ...routerAnswers(route), ...route.responses };
    const { parameters: extraParameters, ...extra } = (route.openapi ?? {}) as { parameters?: object[] };
    const params = [...parameters(route), ...(extraParameters ?? [])];
    (paths[path] ??= {})[route.method] = {
      operationId: route.operationId,
      tags: route.tags,
      summary: route.summary,
      description: route.description,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(route.body
        ? { requestBody: { required: true, description: route.body.description, content: { [JSON_TYPE]: { schema: ref(route.body.schema) } } } }
        : {}),
      responses: Object.fromEntries(
        Object.keys(answers).map(Number).sort((a, b) => a - b).map((status) => [String(status), response(status, answers[status]!)]),
      ),
      ...(route.auth === 'none' ? { security: [] } : {}),
      ...extra,
    };
  }

  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, description: info.description },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    // Relative: the document's own origin, whatever proxy or TLS terminator sits in front.
    servers: [{ url: '/', description: 'The origin this document was fetched from.' }],
    security: [{ bearer: [] }],
    tags: [...new Set(routes.flatMap((route) => route.tags))].map((name) => ({ name })),
    paths,
    components: { schemas: info.components, securitySchemes: info.securitySchemes },
  };
}
