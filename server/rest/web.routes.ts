/**
 * The browser side of the gateway: the demo page at `/` (the `<convo-chat>` widget on a plain
 * page), the widget and SDK bundles built into dist/ by scripts/build-web.mjs, and, in embedded
 * development mode only, `GET /dev/token` handing the page a token for the dev user (DEV_IDENTITY,
 * the identity the banner and `npm run token` mint too), and only to a browser on this machine
 * (server/loopback.ts).
 *
 * The bundles (and their source maps) carry `access-control-allow-origin: CORS_ORIGIN`: a page on
 * another origin loads `/convo-client.js` with `import()` or `<script type="module">`, which the
 * browser fetches in CORS mode.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { DEV_IDENTITY, signToken } from './auth.js';
import { errorBody } from './errors.js';
import { guard } from './guard.js';
import { sendJson, watchAborted } from './http.js';
import { isLoopbackHost, isLoopbackPeer } from './loopback.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The demo page loads only its own scripts; the socket may go to any ws(s) origin it is pointed at. */
const PAGE_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'self'";

/** `shared`: a bundle other origins may load (served with access-control-allow-origin). */
const ASSETS: Record<string, { file: string; type: string; shared?: boolean }> = {
  '/': { file: 'web/demo.html', type: 'text/html; charset=utf-8' },
  '/demo.js': { file: 'web/demo.js', type: 'text/javascript; charset=utf-8' },
  '/convo-chat.js': { file: 'dist/convo-chat.js', type: 'text/javascript; charset=utf-8', shared: true },
  '/convo-chat.js.map': { file: 'dist/convo-chat.js.map', type: 'application/json', shared: true },
  '/convo-client.js': { file: 'dist/client.js', type: 'text/javascript; charset=utf-8', shared: true },
  '/convo-client.js.map': { file: 'dist/client.js.map', type: 'application/json', shared: true },
  // The name the bundle's sourceMappingURL gives (it is built as dist/client.js).
  '/client.js.map': { file: 'dist/client.js.map', type: 'application/json', shared: true },
};

/** Lifetime of a /dev/token token: short, so the page exercises auth.expiring and refresh. */
const DEV_TOKEN_TTL_S = 600;

export interface WebRouteOptions {
  log: Logger;
  /**
   * The generated development secret, passed only in embedded development mode (no JWT_SECRET or
   * JWKS_URL, no DATABASE_URL or REDIS_URL, NODE_ENV not production). Without it, /dev/token is
   * 404 like any unknown route.
   */
  devTokenSecret?: string;
  workspaceClaim: string;
  /** JWT_ISSUER / JWT_AUDIENCE: a development token carries them, or the server would refuse it. */
  issuer?: string;
  audience?: string;
  /** CORS_ORIGIN, sent with the bundles. */
  corsOrigin: string;
}

/** Mounts the routes; call before the catch-all 404. */
export function mountWebRoutes(app: TemplatedApp, options: WebRouteOptions): void {
  const { log } = options;
  // An unexpected failure costs only its own request (server/guard.ts).
  const abort = (_error: unknown, res: HttpResponse) => res.close();
  for (const [route, asset] of Object.entries(ASSETS)) {
    const headers: Record<string, string> = asset.shared ? { 'access-control-allow-origin': options.corsOrigin } : {};
    app.get(route, guard(log, route, (res: HttpResponse) => serveFile(res, asset.file, asset.type, headers, log), abort));
  }
  const secret = options.devTokenSecret;
  if (!secret) return;
  const devToken = guard(log, '/dev/token', async (res: HttpResponse, req: HttpRequest) => {
    // Read before the first await: uWS frees the request then.
    const host = req.getHeader('host');
    const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
    const state = watchAborted(res);
    if (!isLoopbackPeer(peer) || !isLoopbackHost(host)) {
      sendJson(res, 403, errorBody('forbidden', 'GET /dev/token answers only a browser on the machine the server runs on, at a loopback address (http://127.0.0.1:<port>/ or http://localhost:<port>/). Elsewhere, mint a token with npm run token.'), state);
      return;
    }
    const token = await signToken(secret, {
      ...DEV_IDENTITY, ttlSeconds: DEV_TOKEN_TTL_S, workspaceClaim: options.workspaceClaim,
      issuer: options.issuer, audience: options.audience,
    });
    sendJson(res, 200, { token, expires_at: new Date(Date.now() + DEV_TOKEN_TTL_S * 1000).toISOString() }, state);
  }, abort);
  app.get('/dev/token', devToken);
  app.post('/dev/token', devToken);
}

async function serveFile(res: HttpResponse, file: string, type: string, headers: Record<string, string>, log: Logger): Promise<void> {
  const state = watchAborted(res);
  let body: Buffer;
  try {
    body = await readFile(path.join(ROOT, file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: error, file }, 'could not read a web asset');
    // dist/ is built by `npm install` and `npm start` (scripts/build-web.mjs); a checkout that skipped it is told so.
    sendJson(res, 503, { code: 'unavailable', message: `${file} is missing: run npm run build.`, retryable: false }, state, headers);
    return;
  }
  if (state.aborted) return;
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', type).writeHeader('cache-control', 'no-cache').writeHeader('x-content-type-options', 'nosniff');
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    if (type.startsWith('text/html')) res.writeHeader('content-security-policy', PAGE_POLICY).writeHeader('referrer-policy', 'no-referrer');
    res.end(body);
  });
}
