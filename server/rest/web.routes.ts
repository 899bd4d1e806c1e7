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
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_IDENTITY, signToken } from '../auth.js';
import { RequestError } from '../errors.js';
import { media, ok, refusal, json, type Reply } from '../http/route.js';
import { isLoopbackHost, isLoopbackPeer } from '../loopback.js';
import { devTokenSchema } from './components.js';
import { route } from './deps.js';

/** The package's folder: the nearest one up with a package.json (from server/rest/ in a checkout, dist/ when built). */
const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/** The demo page loads only its own scripts; the socket may go to any ws(s) origin it is pointed at. */
const PAGE_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'self'";

/** `shared`: a bundle other origins may load (served with access-control-allow-origin). */
const ASSETS: Record<string, { file: string; type: string; what: string; shared?: boolean }> = {
  '/': { file: 'web/demo.html', type: 'text/html; charset=utf-8', what: 'The demo page: the <convo-chat> widget on a plain page.' },
  '/demo.js': { file: 'web/demo.js', type: 'text/javascript; charset=utf-8', what: 'The demo page\'s script.' },
  '/convo-chat.js': { file: 'dist/convo-chat.js', type: 'text/javascript; charset=utf-8', what: 'The <convo-chat> widget bundle.', shared: true },
  '/convo-chat.js.map': { file: 'dist/convo-chat.js.map', type: 'application/json', what: 'The widget bundle\'s source map.', shared: true },
  '/convo-client.js': { file: 'dist/client.js', type: 'text/javascript; charset=utf-8', what: 'The client SDK bundle (an ES module).', shared: true },
  '/convo-client.js.map': { file: 'dist/client.js.map', type: 'application/json', what: 'The SDK bundle\'s source map.', shared: true },
  // The name the bundle's sourceMappingURL gives (it is built as dist/client.js).
  '/client.js.map': { file: 'dist/client.js.map', type: 'application/json', what: 'The SDK bundle\'s source map, by the name the bundle gives.', shared: true },
};

/** Lifetime of a /dev/token token: short, so the page exercises auth.expiring and refresh. */
const DEV_TOKEN_TTL_S = 600;

const assetRoutes = Object.entries(ASSETS).map(([urlPath, asset]) =>
  route({
    method: 'get',
    path: urlPath,
    operationId: `asset${urlPath.replace(/[^A-Za-z0-9]+(.)?/g, (_all, next: string | undefined) => (next ?? '').toUpperCase()) || 'DemoPage'}`,
    tags: ['web'],
    summary: asset.what,
    description: `${asset.what} Served from ${asset.file}${asset.shared ? ', loadable from other origins (CORS_ORIGIN)' : ''}.`,
    auth: 'none',
    cors: asset.shared ?? false,
    responses: {
      200: media(asset.type.split(';')[0]!, asset.what, asset.type.startsWith('text/') ? { type: 'string' } : {}),
      503: refusal('The file is missing: the checkout was not built (npm run build).'),
    },
    handler: async (_request, deps) => serveFile(asset.file, asset.type, deps.services.log),
  }),
);

const devToken = (method: 'get' | 'post') =>
  route({
    method,
    path: '/dev/token',
    operationId: method === 'get' ? 'devToken' : 'devTokenPost',
    tags: ['web'],
    summary: 'A token for the dev user (embedded development mode only)',
    description:
      'Hands the demo page a short-lived token for the dev user (the identity the start-up banner and `npm run token` ' +
      'mint), only to a browser on the machine the server runs on. Served only in embedded development mode.',
    auth: 'none',
    enabled: (deps) => deps.devToken !== undefined,
    responses: {
      200: json(devTokenSchema, 'A token and when it expires.'),
      403: refusal('The request does not come from this machine at a loopback address (or its Host is not a loopback name).'),
    },
    handler: async ({ host, peer }, deps) => {
      const dev = deps.devToken!;
      if (!isLoopbackPeer(peer) || !isLoopbackHost(host)) {
        throw new RequestError('forbidden', 'GET /dev/token answers only a browser on the machine the server runs on, at a loopback address (http://127.0.0.1:<port>/ or http://localhost:<port>/). Elsewhere, mint a token with npm run token.');
      }
      const token = await signToken(dev.secret, {
        ...DEV_IDENTITY, ttlSeconds: DEV_TOKEN_TTL_S, workspaceClaim: dev.workspaceClaim, issuer: dev.issuer, audience: dev.audience,
      });
      return ok({ token, expires_at: new Date(Date.now() + DEV_TOKEN_TTL_S * 1000).toISOString() });
    },
  });

export const webRoutes = [...assetRoutes, devToken('get'), devToken('post')];

async function serveFile(file: string, type: string, log: { warn: (data: object, message: string) => void }): Promise<Reply> {
  let body: Buffer;
  try {
    body = await readFile(path.join(ROOT, file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: error, file }, 'could not read a web asset');
    // dist/ is built by `npm install` and `npm start` (scripts/build-web.mjs); a checkout that skipped it is told so.
    return ok({ code: 'unavailable', message: `${file} is missing: run npm run build.`, retryable: false }, 503);
  }
  const headers: Record<string, string> = { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (type.startsWith('text/html')) Object.assign(headers, { 'content-security-policy': PAGE_POLICY, 'referrer-policy': 'no-referrer' });
  return { status: 200, raw: body, type, headers };
}
