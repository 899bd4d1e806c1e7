/**
 * The WebSocket handshake on GET /v1/ws: origin check, credentials (header, subprotocol, query,
 * ticket), token verification, the refusal of a user or address whose sockets keep being closed
 * for policy (4008), the per-user socket limit, then the upgrade.
 *
 * A refused handshake is answered in one of two ways. A client that offers the `chat.v1` (or
 * `agui.v1`) subprotocol (every browser client should: a browser's WebSocket API cannot read a handshake
 * response and reports any refusal as a bare 1006) is upgraded and then told: one `error` frame,
 * then a close whose code and reason say what to do (4001 `token_expired` / `unauthenticated`,
 * 4003 `forbidden`, 4008 `rate_limited retry_after_ms=N`, 4503 `unavailable retry_after_ms=N`).
 * Anyone else gets a plain HTTP 401/403/429/503 with a JSON body and no upgrade.
 * (./handshake-refusal.ts renders the first kind.)
 */
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { httpStatus } from '../../protocol/codes.js';
import { AGUI_SUBPROTOCOL } from '../../protocol/agui.js';
import { newId } from '../../db/ids.js';
import { AuthError, extractCredentials, type Principal, type TokenVerifier } from '../auth.js';
import { Connection, type ConnectionContext, type SocketData } from './connection.js';
import { AguiConnection, chooseSubprotocol } from './agui-connection.js';
import type { Refusal } from './handshake-refusal.js';
import { sendJson, watchAborted } from '../http.js';
import { errorBody } from '../errors.js';
import { isConnectionError } from '../../errors/backing-services.js';
import { retryAfterSeconds, type RateLimiter } from '../rate-limits/index.js';
import type { TicketStore } from '../tickets/index.js';
import type { CorkHolder } from '../cork-holder.js';

export interface UpgradeDeps {
  verifyToken: TokenVerifier;
  tickets: TicketStore;
  rateLimits: RateLimiter;
  corkHolder: CorkHolder;
  allowedOrigins: readonly string[];
  maxBufferedBytes: number;
  log: Logger;
  /** The gateway is shutting down: handshakes still verifying are refused, not upgraded. */
  closing: () => boolean;
}

export function createUpgradeHandler(deps: UpgradeDeps) {
  const { log } = deps;
  const shared: ConnectionContext = { log, maxBufferedBytes: deps.maxBufferedBytes };

  return function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // Everything needed from req is copied now: req is invalid after the first await.
    const key = req.getHeader('sec-websocket-key');
    const protocolHeader = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const ticket = req.getQuery('ticket') ?? '';
    const credentials = extractCredentials(req.getHeader('authorization'), protocolHeader, req.getQuery('access_token') ?? '');
    // The peer address (no proxy header is trusted): a user or an address kept out after policy closes.
    const address = Buffer.from(res.getRemoteAddressAsText()).toString();
    // Without onAborted, a client that leaves during verification would crash the process.
    const state = watchAborted(res);
    // The subprotocol answered: chat.v1 (native frames), agui.v1 (bare AG-UI events), or none.
    const subprotocol = chooseSubprotocol(protocolHeader, credentials.protocol);
    const byClose = subprotocol !== '';

    const refuse = (refusal: Refusal) => {
      if (state.aborted) return;
      if (!byClose) {
        const headers: Record<string, string> = refusal.retryAfterMs === undefined ? {} : { 'retry-after': retryAfterSeconds(refusal.retryAfterMs) };
        sendJson(res, httpStatus(refusal.code), errorBody(refusal.code, refusal.message, refusal.retryAfterMs), state, headers);
        return;
      }
      const data: SocketData = { refusal };
      deps.corkHolder.upgrade(res, () => res.upgrade<SocketData>(data, key, subprotocol, extensions, context));
    };

    if (origin && deps.allowedOrigins.length > 0 && !deps.allowedOrigins.includes(origin)) {
      refuse({ code: 'forbidden', message: 'This origin may not open the socket (ALLOWED_ORIGINS).' });
      return;
    }
    if (!credentials.token && !ticket) {
      refuse({
        code: 'unauthenticated',
        message: 'A token is required: Authorization: Bearer <jwt>, a bearer.<jwt> subprotocol, ?access_token=, or ?ticket= from POST /v1/ws-ticket.',
      });
      return;
    }
    const authenticate: Promise<Principal> = credentials.token
      ? deps.verifyToken(credentials.token)
      : deps.tickets.redeem(ticket).then((principal) => {
          if (!principal) throw new AuthError('unauthenticated', 'The ticket is invalid, expired or already used; get a new one from POST /v1/ws-ticket.');
          if (principal.expiresAt.getTime() <= Date.now()) throw new AuthError('token_expired', 'The token behind this ticket has expired.');
          return principal;
        });
    authenticate.then(
      async (principal) => {
        if (state.aborted) return;
        if (deps.closing()) {
          refuse({ code: 'unavailable', message: 'This gateway is shutting down; connect again (to another one).', retryAfterMs: 1000 });
          return;
        }
        // RATE_LIMIT_POLICY_BLOCK_S: a user or address whose sockets keep being closed with 4008 waits.
        const kept = await deps.rateLimits.checkPolicyCloses(principal, address).catch((error: unknown) => {
          log.warn({ err: error }, 'policy-close refusals not checked');
          return undefined;
        });
        if (kept) {
          refuse({ code: kept.code, message: kept.message, retryAfterMs: kept.retryAfterMs });
          return;
        }
        if (state.aborted) return;
        const id = newId('c');
        // RATE_LIMIT_CONNECTIONS_PER_USER, across gateways: refused before the socket opens.
        const limited = await deps.rateLimits.acquireConnection(principal, id).catch((error: unknown) => {
          log.warn({ err: error }, 'connection limit not checked');
          return undefined;
        });
        if (limited) {
          refuse({ code: limited.code, message: limited.message, retryAfterMs: limited.retryAfterMs });
          return;
        }
        if (state.aborted) {
          deps.rateLimits.releaseConnection(id);
          return;
        }
        const connection = subprotocol === AGUI_SUBPROTOCOL
          ? new AguiConnection(id, principal, shared, deps.rateLimits.policyAddress(address))
          : new Connection(id, principal, shared, deps.rateLimits.policyAddress(address));
        const data: SocketData = { connection };
        try {
          deps.corkHolder.upgrade(res, () => res.upgrade<SocketData>(data, key, subprotocol, extensions, context));
        } finally {
          // uWS runs `open` inside upgrade(); a socket that did not open will never close either.
          if (!connection.ws) deps.rateLimits.releaseConnection(id);
        }
      },
      (error: unknown) => {
        if (error instanceof AuthError) {
          refuse({ code: error.code, message: error.message, retryAfterMs: error.retryAfterMs });
        } else if (isConnectionError(error)) {
          refuse({ code: 'unavailable', message: 'Authentication is temporarily unavailable; retry shortly.', retryAfterMs: 1000 });
        } else {
          log.error({ err: error }, 'upgrade authentication failed unexpectedly');
          refuse({ code: 'unauthenticated', message: 'The token could not be verified.' });
        }
      },
    ).catch((error: unknown) => {
      // The upgrade itself failed after verification (a bug): logged, and the client is answered.
      log.error({ err: error }, 'upgrade failed unexpectedly');
      if (!state.aborted) sendJson(res, 500, errorBody('internal_error', 'Internal server error.'), state);
    });
  };
}
