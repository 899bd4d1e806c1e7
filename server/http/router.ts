/**
 * Mounts a route table on uWS: each route's method (and HEAD for a GET), then for every request:
 * copy what is needed off `req` before any await, read a bounded JSON body, authenticate a
 * `bearer` route with the socket's JWT verifier and count it against the REST rate limit, validate
 * the body with the protocol's schemas and the path and query with ./params.ts, run the handler
 * (in an in-flight slot) and write its answer; every failure becomes `{code, message}` with the
 * code's status. ./fallback.ts answers what no route matches.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { codeFor, describeError, findUnstorable, ajv as protocolAjv } from '../../protocol/validate.js';
import { AuthError, type Principal, type TokenVerifier } from '../auth.js';
import { classifyFailure, errorBody, RequestError } from '../errors.js';
import { guard } from '../guard.js';
import type { RateLimiter } from '../rate-limits/index.js';
import { paramParser } from './params.js';
import { Exchange, statusLine } from './reply.js';
import type { Reply, Route } from './route.js';
import { SseStream } from './sse.js';

export interface RouterOptions {
  log: Logger;
  /** CORS_ORIGIN, sent with the answers of `cors` routes. */
  corsOrigin: string;
  /** The largest body a route reads (MAX_FRAME_BYTES). */
  maxBodyBytes: number;
  /** Needed when the table has `bearer` routes. */
  verifyToken?: TokenVerifier;
  rateLimits?: RateLimiter;
}

const UWS_METHOD = { get: 'get', post: 'post', put: 'put', patch: 'patch', delete: 'del' } as const;

/** Mounts the routes `deps` enables, in table order; returns them (for 405s and the documents). */
export function mountRoutes<D>(app: TemplatedApp, table: readonly Route<D>[], deps: D, options: RouterOptions): Route<D>[] {
  const mounted = table.filter((route) => route.enabled?.(deps) ?? true);
  for (const route of mounted) {
    app[UWS_METHOD[route.method]](route.path, handlerFor(route, deps, options, false));
    if (route.method === 'get') app.head(route.path, handlerFor(route, deps, options, true));
  }
  return mounted;
}

function handlerFor<D>(route: Route<D>, deps: D, options: RouterOptions, head: boolean) {
  const { log } = options;
  const names = [...route.path.matchAll(/:([A-Za-z_]\w*)/g)].map((match) => match[1]!);
  const params = route.params ? paramParser(route.params, 'path') : undefined;
  const query = route.query ? paramParser(route.query, 'query') : undefined;
  const body = route.body ? protocolAjv.compile(route.body.schema) : undefined;
  const maxBodyBytes = route.maxBodyBytes ?? options.maxBodyBytes;
  const common: Record<string, string> = route.cors ? { 'access-control-allow-origin': options.corsOrigin } : {};
  const what = `${head ? 'HEAD' : route.method.toUpperCase()} ${route.path}`;
  if (route.auth === 'bearer' && (!options.verifyToken || !options.rateLimits)) throw new Error(`${what} needs a token verifier and rate limits`);

  return guard(log, what, (res: HttpResponse, req: HttpRequest) => {
    // Everything needed from req is copied now: req is invalid after this function returns.
    const authorization = route.auth === 'bearer' ? req.getHeader('authorization') : '';
    const host = req.getHeader('host');
    const rawParams = Object.fromEntries(names.map((name, i) => [name, req.getParameter(i) ?? '']));
    const search = new URLSearchParams(req.getQuery() ?? '');
    const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
    const exchange = new Exchange(res, head, common);

    const respond = async (rawBody: Buffer | undefined) => {
      let principal: Principal | undefined;
      if (route.auth === 'bearer') {
        const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
        if (!token) return exchange.fail('unauthenticated', 'A token is required: Authorization: Bearer <jwt>.');
        try {
          principal = await options.verifyToken!(token);
        } catch (error) {
          if (error instanceof AuthError) return exchange.fail(error.code, error.message, error.retryAfterMs);
          throw error;
        }
        if (route.rateLimited !== false) await options.rateLimits!.consumeRest(principal);
      }
      let value: unknown;
      if (body) {
        try {
          value = rawBody && rawBody.length > 0 ? JSON.parse(rawBody.toString('utf8')) : {};
        } catch {
          return exchange.fail('invalid_request', 'The body is not valid JSON.');
        }
        if (!body(value)) {
          const error = body.errors?.[0];
          return exchange.fail(codeFor(error, 'invalid_request'), describeError(error, 'body'));
        }
        const unfit = findUnstorable(value, 'body');
        if (unfit) return exchange.fail('invalid_request', unfit);
      }
      for (const [name, text] of search) {
        if (text.includes('\u0000') || name.includes('\u0000')) {
          return exchange.fail('invalid_request', `query.${name.replaceAll('\u0000', '')} must not contain NUL characters`);
        }
      }
      const request = {
        params: params ? params.parse(rawParams) : rawParams,
        query: query ? query.parse(Object.fromEntries([...search.keys()].map((name) => [name, search.get(name)!]))) : {},
        body: value,
        principal,
        signal: exchange.controller.signal,
        host,
        peer,
      };
      const reply: Reply = principal && route.inFlight !== false
        ? await options.rateLimits!.withRequestSlot(principal, () => route.handler(request, deps))
        : await route.handler(request, deps);
      if (!('stream' in reply)) return exchange.write(reply);
      const sse = new SseStream(exchange, reply.headers ?? {});
      try {
        if (!head) await reply.stream(sse);
      } finally {
        sse.end();
      }
    };

    const run = (rawBody: Buffer | undefined) => {
      respond(rawBody).catch((error: unknown) => {
        const failure = classifyFailure(error);
        if (failure.code === 'internal_error' && !(error instanceof RequestError)) log.error({ err: error, where: what }, 'HTTP handler failed');
        else if (!(error instanceof RequestError)) log.warn({ err: error, where: what }, 'HTTP request failed: a backing service is unreachable or out of time');
        exchange.fail(failure.code, failure.message, failure.retryAfterMs, failure.details);
      });
    };
    if (!body) {
      run(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (exchange.done) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) {
        exchange.fail('too_large', `The body is over ${maxBodyBytes} bytes.`);
        return;
      }
      // The chunk is only valid during this callback: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) run(Buffer.concat(chunks));
    });
  }, (_error, res: HttpResponse) => {
    res.cork(() => res.writeStatus(statusLine(500)).end(JSON.stringify(errorBody('internal_error', 'Internal server error.'))));
  });
}
