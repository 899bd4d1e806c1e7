/**
 * The REST mirror's plumbing on uWS: copy the request before any await, read a bounded JSON body,
 * authenticate with the same JWT verifier as the socket, validate with the protocol's schemas,
 * and render every failure as `{code, message}` with a status that matches the code.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import { describeError, findNul } from '../../protocol/validate.js';
import { httpStatus, isRetryable, type ErrorCode } from '../../protocol/codes.js';
import { AuthError, type Principal, type TokenVerifier } from '../auth.js';
import { errorBody, isConnectionError, RequestError } from '../errors.js';
import { retryAfterSeconds } from '../rate-limits/index.js';

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
  401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 409: '409 Conflict', 413: '413 Payload Too Large',
  429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

export interface RestKit {
  route(method: 'get' | 'post' | 'patch' | 'del', pattern: string, options: { body?: ValidateFunction }, handler: RestHandler): void;
}

export function createRestKit(
  app: TemplatedApp,
  deps: { verifyToken: TokenVerifier; log: Logger; maxBodyBytes: number; corsOrigin: string },
): RestKit {
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
  const fail = (res: HttpResponse, aborted: { value: boolean }, code: ErrorCode, message: string, retryAfterMs?: number) =>
    write(res, aborted, httpStatus(code), errorBody(code, message, retryAfterMs), retryAfterMs);

  return {
    route(method, pattern, options, handler) {
      const paramCount = pattern.split('/').filter((part) => part.startsWith(':')).length;
      app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
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
            if (error instanceof AuthError) return fail(res, aborted, error.code, error.message);
            throw error;
          }
          let body: unknown;
          if (options.body) {
            try {
              body = rawBody && rawBody.length > 0 ? JSON.parse(rawBody.toString('utf8')) : {};
            } catch {
              return fail(res, aborted, 'invalid_request', 'The body is not valid JSON.');
            }
            if (!options.body(body)) return fail(res, aborted, 'invalid_request', describeError(options.body.errors?.[0], 'body'));
            const nul = findNul(body, 'body');
            if (nul) return fail(res, aborted, 'invalid_request', `${nul} must not contain NUL (\\u0000) characters`);
          }
          for (const [name, value] of query) {
            if (value.includes('\u0000') || name.includes('\u0000')) {
              return fail(res, aborted, 'invalid_request', `query.${name.replaceAll('\u0000', '')} must not contain NUL characters`);
            }
          }
          try {
            const result = await handler({ principal, params, query, body, signal: controller.signal });
            write(res, aborted, result.status, result.body);
          } catch (error) {
            if (error instanceof RequestError) return fail(res, aborted, error.code, error.message, error.retryAfterMs);
            if (isConnectionError(error)) {
              deps.log.warn({ err: error }, 'REST request failed: a backing service is unreachable');
              return fail(res, aborted, 'unavailable', 'A backing service is unreachable; retry shortly.', 1000);
            }
            throw error;
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
      });
    },
  };
}
