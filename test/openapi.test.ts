/**
 * GET /v1/openapi.json: fetched from a real node. Every route registered in server/rest/routes.ts
 * (parsed from the source, so a new route without docs fails here) is documented with its method,
 * path parameters, query ranges, body and success status; every $ref resolves; the component
 * schemas are the protocol's own objects and compile with ajv; real responses match them.
 */
import { readFile } from 'node:fs/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import pkg from '../package.json' with { type: 'json' };
import { ajv as protocolAjv } from '../protocol/validate.js';
import { requestSchemas, resultSchemas, idSchema } from '../protocol/resources.js';
import { MAX_WAIT_MS } from '../server/operations/events.js';
import { openApiDocument } from '../server/rest/openapi.js';
import { useStack, type StackCtx } from './support/fixture.js';

const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

type Json = any;

// ---- routes.ts, parsed -------------------------------------------------------------------------

interface SourceRoute {
  method: string;
  path: string;
  /** The source from this kit.route( to the next. */
  block: string;
}

const routesSource = await readFile(new URL('../server/rest/routes.ts', import.meta.url), 'utf8');

function sourceRoutes(): SourceRoute[] {
  const pattern = /kit\.route\(\s*'(get|post|patch|del)'\s*,\s*'([^']+)'/g;
  const matches = [...routesSource.matchAll(pattern)];
  return matches.map((match, i) => ({
    method: match[1] === 'del' ? 'delete' : match[1]!,
    path: match[2]!.replace(/:([A-Za-z_]\w*)/g, '{$1}'),
    block: routesSource.slice(match.index!, matches[i + 1]?.index ?? routesSource.length),
  }));
}

/** `1`, `2 ** 31 - 1`, `MAX_WAIT_MS`: the bounds written in intParam calls. */
function bound(expression: string): number {
  const text = expression.trim().replace(/\bMAX_WAIT_MS\b/g, String(MAX_WAIT_MS));
  if (!/^[\d\s*+\-_]+$/.test(text)) throw new Error(`cannot evaluate intParam bound '${expression}'`);
  return Function(`return (${text.replace(/_/g, '')});`)() as number;
}

// ---- the document ------------------------------------------------------------------------------

/** Paths served by server/gateway.ts itself rather than routes.ts. */
const GATEWAY_PATHS = ['/health', '/live', '/ready', '/v1/ws', '/v1/openapi.json'];
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function resolvePointer(doc: Json, ref: string): Json {
  assert.ok(ref.startsWith('#/'), `$ref ${ref} is not local to the document`);
  let node = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

function collectRefs(node: Json, at: string, out: Array<{ ref: string; at: string }>): typeof out {
  if (Array.isArray(node)) node.forEach((item, i) => collectRefs(item, `${at}/${i}`, out));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push({ ref: value, at });
      else collectRefs(value, `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, out);
    }
  }
  return out;
}

/** Parameters of an operation, path-level ones included (operation-level win by name+in). */
function parametersOf(doc: Json, path: string, method: string): Json[] {
  const deref = (p: Json) => (p.$ref ? resolvePointer(doc, p.$ref) : p);
  const byKey = new Map<string, Json>();
  for (const p of [...(doc.paths[path].parameters ?? []), ...(doc.paths[path][method].parameters ?? [])].map(deref)) {
    byKey.set(`${p.in}:${p.name}`, p);
  }
  return [...byKey.values()];
}

function schemaOf(doc: Json, schema: Json): Json {
  return schema?.$ref ? resolvePointer(doc, schema.$ref) : schema;
}

// ---- the suite ---------------------------------------------------------------------------------

interface Context extends StackCtx {
  doc: Json;
  token: string;
}

const test = suite<Context>('openapi');

useStack(test, {
  backend: 'embedded',
  setup: async (context) => {
    const response = await fetch(`${context.base}/v1/openapi.json`);
    assert.is(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    context.doc = await response.json();
    context.token = await context.stack.token('openapi-user');
  },
});

test('is OpenAPI 3.1.0 with info, a bearer scheme applied globally, and is built once', ({ doc }) => {
  assert.is(doc.openapi, '3.1.0');
  assert.type(doc.info.title, 'string');
  assert.is(doc.info.version, pkg.version);
  assert.equal(doc.components.securitySchemes.bearer, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: doc.components.securitySchemes.bearer.description,
  });
  assert.equal(doc.security, [{ bearer: [] }]);
  for (const path of ['/health', '/live', '/ready']) {
    assert.equal(doc.paths[path].get.security, [], `${path} must not need a token`);
  }
  assert.ok(openApiDocument() === openApiDocument(), 'the document is memoised');
  assert.equal(JSON.parse(JSON.stringify(openApiDocument())), doc, 'the served document is the built one');
});

test('every route in routes.ts is documented with its method, params, body and status', ({ doc }) => {
  const routes = sourceRoutes();
  assert.ok(routes.length >= 15, `expected the REST routes, parsed ${routes.length}`);
  const operationIds = new Set<string>();
  for (const route of routes) {
    const label = `${route.method.toUpperCase()} ${route.path}`;
    const operation = doc.paths[route.path]?.[route.method];
    assert.ok(operation, `${label} is not in /v1/openapi.json`);
    assert.type(operation.operationId, 'string', `${label}: operationId`);
    assert.not.ok(operationIds.has(operation.operationId), `${label}: duplicate operationId ${operation.operationId}`);
    operationIds.add(operation.operationId);
    assert.ok(typeof operation.description === 'string' && operation.description.length > 0, `${label}: description`);
    assert.is(operation.security, undefined, `${label}: uses the global bearer security`);

    const parameters = parametersOf(doc, route.path, route.method);
    // Path parameters: each {name} is declared, required, as an Id.
    for (const [, name] of route.path.matchAll(/\{(\w+)\}/g)) {
      const p = parameters.find((x) => x.in === 'path' && x.name === name);
      assert.ok(p, `${label}: path parameter ${name}`);
      assert.is(p.required, true, `${label}: path parameter ${name} is required`);
      assert.equal(schemaOf(doc, p.schema), idSchema, `${label}: path parameter ${name} is an Id`);
    }
    // Query parameters: the bounds of every intParam call, every boolParam, every query.get.
    for (const [, name, min, max] of route.block.matchAll(/intParam\(\s*query\s*,\s*'(\w+)'\s*,\s*([^,]+?)\s*,\s*([^)]+?)\s*\)/g)) {
      const p = parameters.find((x) => x.in === 'query' && x.name === name);
      assert.ok(p, `${label}: query parameter ${name}`);
      assert.is(p.schema.type, 'integer', `${label}: ${name} is an integer`);
      assert.is(p.schema.minimum, bound(min!), `${label}: ${name} minimum`);
      assert.is(p.schema.maximum, bound(max!), `${label}: ${name} maximum`);
    }
    for (const [, name] of route.block.matchAll(/boolParam\(\s*query\s*,\s*'(\w+)'\s*\)/g)) {
      const p = parameters.find((x) => x.in === 'query' && x.name === name);
      assert.ok(p, `${label}: query parameter ${name}`);
      assert.is(p.schema.type, 'boolean', `${label}: ${name} is a boolean`);
    }
    for (const [, name] of route.block.matchAll(/query\.get\(\s*'(\w+)'\s*\)/g)) {
      assert.ok(parameters.some((x) => x.in === 'query' && x.name === name), `${label}: query parameter ${name}`);
    }
    const documentedQuery = parameters.filter((x) => x.in === 'query').map((x) => x.name).sort();
    const sourceQuery = [...route.block.matchAll(/(?:intParam|boolParam)\(\s*query\s*,\s*'(\w+)'|query\.get\(\s*'(\w+)'\s*\)/g)]
      .map((m) => m[1] ?? m[2]!)
      .sort();
    assert.equal(documentedQuery, [...new Set(sourceQuery)], `${label}: documented query parameters`);

    // Body: documented when the route validates one (the same schema when it is a requestValidators entry), else none.
    const takesBody = /\{\s*body:/.test(route.block);
    const validator = /body:\s*requestValidators\['([\w.]+)'\]/.exec(route.block)?.[1] as keyof typeof requestSchemas | undefined;
    if (takesBody) {
      const schema = operation.requestBody?.content?.['application/json']?.schema;
      assert.ok(schema?.$ref, `${label}: request body, as a $ref to a component`);
      assert.is(operation.requestBody.required, true, `${label}: request body is required`);
      if (validator) {
        assert.equal(schemaOf(doc, schema), requestSchemas[validator], `${label}: body schema is requestSchemas['${validator}']`);
      }
      assert.ok(operation.responses['413'], `${label}: 413 for an oversized body`);
      assert.ok(operation.responses['400'], `${label}: 400 for an invalid body`);
    } else {
      assert.is(operation.requestBody, undefined, `${label}: takes no body`);
    }
    if (/intParam|boolParam|query\.get/.test(route.block)) assert.ok(operation.responses['400'], `${label}: 400 for bad query`);

    // Success: the status passed to ok(..., status) (200 when none), and only that one.
    const withoutQuery = route.block.replace(/(?:intParam|boolParam)\([^)]*\)/g, '');
    const status = /ok\([\s\S]*?,\s*(2\d\d)\s*,?\s*\)/.exec(withoutQuery)?.[1] ?? '200';
    const successes = Object.keys(operation.responses).filter((s) => s.startsWith('2'));
    assert.equal(successes, [status], `${label}: success status`);
    const success = schemaOf(doc, operation.responses[status].content['application/json'].schema);
    assert.ok(success && typeof success === 'object', `${label}: success schema`);

    // Errors: 401 and 503 always, each with the Error schema.
    assert.ok(operation.responses['401'], `${label}: 401`);
    assert.ok(operation.responses['503'], `${label}: 503`);
    for (const [code, response] of Object.entries<Json>(operation.responses)) {
      if (Number(code) < 400) continue;
      assert.equal(response.content['application/json'].schema, { $ref: '#/components/schemas/Error' }, `${label}: ${code} body`);
    }
  }

  // Nothing documented that routes.ts or the gateway does not serve.
  const served = new Set([...routes.map((r) => `${r.method} ${r.path}`), ...GATEWAY_PATHS.map((p) => `get ${p}`)]);
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
      assert.ok(served.has(`${method} ${path}`), `${method.toUpperCase()} ${path} is documented but not served`);
    }
  }
});

test('the gateway routes: health, live, ready and the WebSocket upgrade', ({ doc }) => {
  for (const path of GATEWAY_PATHS) assert.ok(doc.paths[path]?.get, `GET ${path}`);
  const ws = doc.paths['/v1/ws'].get;
  assert.ok(ws.responses['101'], '101 Switching Protocols');
  assert.equal(ws.responses['401'].content['application/json'].schema, { $ref: '#/components/schemas/Error' });
  assert.match(ws.description, /protocol/i);
  assert.ok(doc.paths['/ready'].get.responses['503'], '/ready answers 503 when not ready');
  const events = parametersOf(doc, '/v1/threads/{id}/events', 'get');
  assert.is(events.find((p) => p.name === 'wait_ms')?.schema.maximum, 30_000);
});

test('every $ref resolves within the document', ({ doc }) => {
  const refs = collectRefs(doc, '#', []);
  assert.ok(refs.length > 20, `expected many $refs, found ${refs.length}`);
  for (const { ref, at } of refs) assert.ok(resolvePointer(doc, ref) !== undefined, `${at}: $ref ${ref} does not resolve`);
});

test('component schemas are the protocol schemas, not copies', ({ doc }) => {
  const schemas = doc.components.schemas;
  assert.equal(schemas.Thread, resultSchemas.thread);
  assert.equal(schemas.Error, resultSchemas.error);
  assert.equal(schemas.Agent, resultSchemas.agent);
  assert.equal(schemas.ThreadCreateRequest, requestSchemas['thread.create']);
  // In process: the very same objects.
  const built = (openApiDocument() as Json).components.schemas;
  assert.ok(built.Thread === resultSchemas.thread, 'Thread is resultSchemas.thread itself');
  const shared = new Set<object>([...Object.values(resultSchemas), ...Object.values(requestSchemas)]);
  // Every result schema a route answers with is one of the protocol's objects.
  for (const [path, item] of Object.entries<Json>((openApiDocument() as Json).paths)) {
    if (GATEWAY_PATHS.includes(path)) continue;
    for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
      for (const [status, response] of Object.entries<Json>(item[method].responses)) {
        const schema = schemaOf(openApiDocument(), response.content?.['application/json']?.schema);
        assert.ok(shared.has(schema), `${method.toUpperCase()} ${path} ${status}: schema is a protocol schema object`);
      }
    }
  }
});

test('component schemas compile with the protocol ajv (strict) and as JSON Schema 2020-12', ({ doc }) => {
  for (const [name, schema] of Object.entries<Json>(doc.components.schemas)) {
    try {
      protocolAjv.compile(schema);
    } catch (error) {
      assert.unreachable(`${name} does not compile with the protocol's ajv: ${(error as Error).message}`);
    }
  }
  // The whole document as a 2020-12 schema resource: every schema in it, with its $refs, compiles.
  const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
  addFormats(ajv, ['date-time']);
  ajv.addSchema(doc, 'openapi.json');
  const pointers: string[] = Object.keys(doc.components.schemas).map((name) => `#/components/schemas/${name}`);
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    const escaped = path.replace(/~/g, '~0').replace(/\//g, '~1');
    for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
      for (const [status, response] of Object.entries<Json>(item[method].responses)) {
        if (response.content) pointers.push(`#/paths/${escaped}/${method}/responses/${status}/content/application~1json/schema`);
      }
      if (item[method].requestBody) pointers.push(`#/paths/${escaped}/${method}/requestBody/content/application~1json/schema`);
    }
  }
  for (const pointer of pointers) {
    try {
      assert.type(ajv.getSchema(`openapi.json${pointer}`), 'function', pointer);
    } catch (error) {
      assert.unreachable(`${pointer} does not compile as 2020-12: ${(error as Error).message}`);
    }
  }
});

test('real responses match the documented schemas', async ({ doc, base, token }) => {
  const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
  addFormats(ajv, ['date-time']);
  ajv.addSchema(doc, 'openapi.json');
  const check = (path: string, method: string, status: number, value: unknown) => {
    const response = doc.paths[path][method].responses[String(status)];
    assert.ok(response, `${method.toUpperCase()} ${path} documents ${status}`);
    const validate = ajv.compile({ $ref: `openapi.json${response.content['application/json'].schema.$ref}` });
    assert.ok(validate(value), `${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
  };
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  const created = await fetch(`${base}/v1/threads`, { method: 'POST', headers, body: JSON.stringify({ title: 'documented' }) });
  assert.is(created.status, 201);
  const thread = await created.json();
  check('/v1/threads', 'post', 201, thread);

  const listed = await fetch(`${base}/v1/threads?limit=5`, { headers });
  assert.is(listed.status, 200);
  check('/v1/threads', 'get', 200, await listed.json());

  const history = await fetch(`${base}/v1/threads/${thread.id}/history`, { headers });
  assert.is(history.status, 200);
  check('/v1/threads/{id}/history', 'get', 200, await history.json());

  // PATCH's body is derived in routes.ts rather than named in requestSchemas: check the documented
  // schema agrees with the route on a body it must accept and one it must refuse.
  const patchBody = ajv.compile({ $ref: `openapi.json${doc.paths['/v1/threads/{id}'].patch.requestBody.content['application/json'].schema.$ref}` });
  for (const [value, status] of [[{ title: 'renamed' }, 200], [{ archived: false }, 200], [{}, 200], [{ colour: 'red' }, 400], [{ title: '' }, 400]] as const) {
    const patched = await fetch(`${base}/v1/threads/${thread.id}`, { method: 'PATCH', headers, body: JSON.stringify(value) });
    assert.is(patched.status, status, `PATCH ${JSON.stringify(value)}`);
    assert.is(patchBody(value), status === 200, `the documented PATCH body schema on ${JSON.stringify(value)}`);
    check('/v1/threads/{id}', 'patch', status, await patched.json());
  }

  const missing = await fetch(`${base}/v1/threads/t_missing`, { headers });
  assert.is(missing.status, 404);
  check('/v1/threads/{id}', 'get', 404, await missing.json());

  const badQuery = await fetch(`${base}/v1/threads/${thread.id}/events?wait_ms=${MAX_WAIT_MS + 1}`, { headers });
  assert.is(badQuery.status, 400);
  check('/v1/threads/{id}/events', 'get', 400, await badQuery.json());

  const anonymous = await fetch(`${base}/v1/threads`);
  assert.is(anonymous.status, 401);
  check('/v1/threads', 'get', 401, await anonymous.json());

  const agents = await fetch(`${base}/v1/agents`, { headers });
  assert.is(agents.status, 200);
  check('/v1/agents', 'get', 200, await agents.json());

  const health = await fetch(`${base}/health`);
  check('/health', 'get', 200, await health.json());
  const ready = await fetch(`${base}/ready`);
  assert.is(ready.status, 200);
  check('/ready', 'get', 200, await ready.json());
});

test.run();
