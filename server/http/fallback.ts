/**
 * What no route of the table answers: CORS preflights, 405 with `Allow` on a path the table knows
 * (the methods of its routes, HEAD with a GET, OPTIONS where the route is CORS-enabled), 404
 * elsewhere. Mounted after the routes.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { errorBody } from '../errors.js';
import { guard } from '../guard.js';
import { Exchange, statusLine } from './reply.js';
import type { Route } from './route.js';
import type { RouterOptions } from './router.js';

/** The methods served on `path`, as `Allow` lists them; empty when no route matches it. */
export function allowedMethods(routes: readonly Route<never>[], path: string): string[] {
  const matching = routes.filter((route) => pathPattern(route.path).test(path));
  if (matching.length === 0) return [];
  const methods = matching.map((route) => route.method.toUpperCase());
  if (methods.includes('GET')) methods.push('HEAD');
  if (matching.some((route) => route.cors)) methods.push('OPTIONS');
  return [...new Set(methods)];
}

/** Mount last: CORS preflights, then 405 with Allow on a known path, 404 elsewhere. */
export function mountFallback(app: TemplatedApp, routes: readonly Route<never>[], options: RouterOptions): void {
  // CORS preflight for browsers calling the REST mirror with a bearer token (no cookies involved).
  app.options('/*', guard(options.log, 'CORS preflight', (res: HttpResponse) => {
    res.cork(() => {
      res
        .writeStatus(statusLine(204))
        .writeHeader('access-control-allow-origin', options.corsOrigin)
        .writeHeader('access-control-allow-methods', 'GET, POST, PATCH, DELETE, OPTIONS')
        .writeHeader('access-control-allow-headers', 'authorization, content-type')
        .writeHeader('access-control-max-age', '600')
        .end();
    });
  }));
  app.any('/*', guard(options.log, 'fallback', (res: HttpResponse, req: HttpRequest) => {
    const path = req.getUrl();
    const method = req.getMethod().toUpperCase();
    const exchange = new Exchange(res, method === 'HEAD', {});
    const allowed = allowedMethods(routes, path);
    if (allowed.length === 0) {
      exchange.fail('not_found', 'No such route.');
      return;
    }
    exchange.write({
      status: 405,
      body: errorBody('invalid_request', `${method} is not supported on ${path}; use ${allowed.join(', ')}.`),
      headers: { allow: allowed.join(', ') },
    });
  }));
}

/** `/v1/threads/:id` as a RegExp over request paths (a trailing slash allowed). */
function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/:[A-Za-z_]\w*/g, '[^/]+')}/?$`);
}
