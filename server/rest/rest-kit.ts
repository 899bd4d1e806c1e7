/**
 * The REST mirror's plumbing on uWS: copy the request before any await, read a bounded JSON body,
 * authenticate with the same JWT verifier as the socket, validate with the protocol's schemas,
 * and render every failure as `{code, message}` with a status that matches the code.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import { codeFor, describeError, findUnstorable } from '../../protocol/validate.js';
import { httpStatus, isRetryable, type ErrorCode } from '../../protocol/codes.js';
import { AuthError, type Principal, type TokenVerifier } from '../auth.js';
import { classifyFailure, errorBody, RequestError } from '../errors.js';
import { guard } from '../guard.js';
import { retryAfterSeconds, type RateLimiter } from '../rate-limits/index.js';

export interface RestRequest {
  principal: Principal;
  /** Path parameters, in pattern order. */
  params: string[];
  query: URLSearchParams;
  body: unknown;
  /** Aborted when the client goes away (long-polls stop waiting). */
  signal: AbortSignal;
}

export interface RestResult {
  status: number;
  body: unknown;
}

export type RestHandler = (request: RestRequest) => Promise<RestResult>;

const STATUS: Record<number, string> = {
  200: '200 OK', 201: '201 Created', 202: '202 Accepted', 204: '204 No Content', 400: '400 Bad Request',
  401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 405: '405 Method Not Allowed', 409: '409 Conflict', 413: '413 Payload Too Large',
  429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

export type RestMethod = 'get' | 'post' | 'patch' | 'del';

export interface RouteOptions {
  body?: ValidateFunction;
  /**
   * Counts against RATE_LIMIT_IN_FLIGHT_PER_USER while it runs. @defaultValue true; a long-poll
   * says false: it waits without using the database, and counts as an open socket instead.
   */
  inFlight?: boolean;
}

export interface RestKit {
  route(method: RestMethod, pattern: string, options: RouteOptions, handler: RestHandler): void;
  /** The methods routed on `path` (for 405 answers with Allow); empty when no route matches it. */
  methodsFor(path: string): string[];
}

export function createRestKit(
  app: TemplatedApp,
  deps: { verifyToken: TokenVerifier; log: Logger; maxBodyBytes: number; corsOrigin: string; rateLimits: RateLimiter },
): RestKit {
  const routes: Array<{ method: string; pattern: RegExp }> = [];
  const write = (res: HttpResponse, aborted: { value: boolean }, status: number, body: unknown, retryAfterMs?: number) => {
    if (aborted.value) return;
    aborted.value = true;
    res.cork(() => {
      res.writeStatus(STATUS[status] ?? `${status} Status`);
      res.writeHeader('access-control-allow-origin', deps.corsOrigin);
      res.writeHeader('cache-control', 'no-store');
      // 429 and 503 say when to come back in whole seconds too, for HTTP clients that honour it.
      if (retryAfterMs !== undefined) {
        res.writeHeader('retry-after', retryAfterSeconds(retryAfterMs));
        res.writeHeader('access-control-expose-headers', 'retry-after');
      }
      if (status === 204) {
        res.end();
        return;
      }
      res.writeHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
  };
  const fail = (res: HttpResponse, aborted: { value: boolean }, code: ErrorCode, message: string, retryAfterMs?: number, details?: { last_seq?: number }) =>
    write(res, aborted, httpStatus(code), errorBody(code, message, retryAfterMs, details), retryAfterMs);

  return {
    methodsFor(path) {
      const methods = routes.filter((r) => r.pattern.test(path)).map((r) => r.method);
      return methods.length === 0 ? [] : [...new Set([...methods, ...(methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'])];
    },
    route(method, pattern, options, handler) {
      const paramCount = pattern.split('/').filter((part) => part.startsWith(':')).length;
      routes.push({
        method: method === 'del' ? 'DELETE' : method.toUpperCase(),
        pattern: new RegExp(`^${pattern.replace(/:[a-z]+/g, '[^/]+')}/?$`),
      });
      app[method](pattern, guard(deps.log, `REST ${method} ${pattern}`, (res: HttpResponse, req: HttpRequest) => {
        // Everything needed from req is copied now: req is invalid after this function returns.
        const authorization = req.getHeader('authorization');
        const params = Array.from({ length: paramCount }, (_, i) => req.getParameter(i) ?? '');
        const query = new URLSearchParams(req.getQuery() ?? '');
        const aborted = { value: false };
        const controller = new AbortController();
        res.onAborted(() => {
          aborted.value = true;
          controller.abort();
        });
        const run = (rawBody: Buffer | undefined) => {
          void respond(rawBody).catch((error) => {
            deps.log.error({ err: error }, 'REST handler failed');
            fail(res, aborted, 'internal_error', 'Internal server error.');
          });
        };
        const respond = async (rawBody: Buffer | undefined) => {
          const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
          if (!token) return fail(res, aborted, 'unauthenticated', 'A token is required: Authorization: Bearer <jwt>.');
          let principal: Principal;
          try {
            principal = await deps.verifyToken(token);
          } catch (error) {
            if (error instanceof AuthError) {
              return fail(res, aborted, error.code, error.message, error.retryAfterMs);
            }
            throw error;
          }
          try {
            await deps.rateLimits.consumeRest(principal);
          } catch (error) {
            if (error instanceof RequestError) return fail(res, aborted, error.code, error.message, error.retryAfterMs);
            throw error;
          }
          let body: unknown;
          if (options.body) {
            try {
              body = rawBody && rawBody.length > 0 ? JSON.parse(rawBody.toString('utf8')) : {};
            } catch {
              return fail(res, aborted, 'invalid_request', 'The body is not valid JSON.');
            }
            if (!options.body(body)) {
              const error = options.body.errors?.[0];
              return fail(res, aborted, codeFor(error, 'invalid_request'), describeError(error, 'body'));
            }
            const unfit = findUnstorable(body, 'body');
            if (unfit) return fail(res, aborted, 'invalid_request', unfit);
          }
          for (const [name, value] of query) {
            if (value.includes('\u0000') || name.includes('\u0000')) {
              return fail(res, aborted, 'invalid_request', `query.${name.replaceAll('\u0000', '')} must not contain NUL characters`);
            }
          }
          try {
            const request = { principal, params, query, body, signal: controller.signal };
            const result = options.inFlight === false
              ? await handler(request)
              : await deps.rateLimits.withRequestSlot(principal, () => handler(request));
            write(res, aborted, result.status, result.body);
          } catch (error) {
            if (error instanceof RequestError) return fail(res, aborted, error.code, error.message, error.retryAfterMs, error.details);
            const failure = classifyFailure(error);
            if (failure.code === 'internal_error') throw error;
            deps.log.warn({ err: error }, 'REST request failed: a backing service is unreachable or out of time');
            return fail(res, aborted, failure.code, failure.message, failure.retryAfterMs);
          }
        };
        if (!options.body) {
          run(undefined);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.onData((chunk, isLast) => {
          if (aborted.value) return;
          size += chunk.byteLength;
          if (size > deps.maxBodyBytes) {
            fail(res, aborted, 'too_large', `The body is over ${deps.maxBodyBytes} bytes.`);
            return;
          }
          // The chunk is only valid during this callback: copy it.
          chunks.push(Buffer.from(chunk.slice(0)));
          if (isLast) run(Buffer.concat(chunks));
        });
      }, (_error, res: HttpResponse) => {
        res.cork(() => res.writeStatus('500 Internal Server Error').end(JSON.stringify(errorBody('internal_error', 'Internal server error.'))));
      }));
    },
  };
}
