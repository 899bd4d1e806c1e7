/**
 * How one connection attempt carries the token. The `bearer.<jwt>` subprotocol costs nothing but
 * puts the JWT in the request head, beside the page's cookies: the gateway reads at most 16 KB of
 * head, and proxies often allow 8 KB per header line. A ticket from `POST /v1/ws-ticket` costs one
 * request and keeps the head small.
 *
 * `transport: 'auto'` sends a token of up to `SUBPROTOCOL_TOKEN_LIMIT` characters in the
 * subprotocol and a longer one as a ticket, and after an attempt that failed before the server
 * could read the token it tries the other way: a socket closed before the upgrade (a browser
 * cannot tell a head too large from a server that is down) → a ticket; a ticket request with no
 * answer, or a 404/405 (no ticket endpoint on this route) → the subprotocol. The transport that
 * worked is kept.
 */
import { PROTOCOL } from '../codes.js';
import type { ErrorPayload } from '../frames.js';
import type { TicketResult } from '../results.js';
import type { HttpRefusal } from './socket.js';
import type { ConversationClientOptions } from './types.js';

/**
 * The longest token `transport: 'auto'` sends in the subprotocol (2 KB): a longer one goes by
 * ticket, leaving the head's room to the browser's own headers and the page's cookies.
 */
export const SUBPROTOCOL_TOKEN_LIMIT = 2_048;

export type Transport = 'subprotocol' | 'ticket';

export type Prepared =
  /** Open the socket with these. */
  | { url: string; protocols: string[]; transport: Transport }
  /** The ticket endpoint refused the token: judged like a refused handshake. */
  | { refused: HttpRefusal }
  /** No ticket: the request got no answer, or (with 'auto') the route has no ticket endpoint. */
  | { failed: string };

export class Handshakes {
  /** With 'auto': the transport the last attempt's outcome points to. */
  private next?: Transport;

  constructor(private readonly options: Pick<ConversationClientOptions, 'url' | 'transport' | 'connectTimeoutMs'>) {}

  private get auto(): boolean {
    return (this.options.transport ?? 'auto') === 'auto';
  }

  /** The URL and subprotocols of one attempt with `token` (a ticket is fetched first). */
  async prepare(token: string): Promise<Prepared> {
    const url = socketUrl(this.options.url);
    const forced = this.options.transport ?? 'auto';
    const transport: Transport = forced !== 'auto' ? forced : this.next ?? (token.length > SUBPROTOCOL_TOKEN_LIMIT ? 'ticket' : 'subprotocol');
    if (transport === 'subprotocol') return { url, protocols: [PROTOCOL, `bearer.${token}`], transport };
    const endpoint = url.replace(/^ws/, 'http').replace(/\/v1\/ws(\?.*)?$/, '/v1/ws-ticket');
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout?.(this.options.connectTimeoutMs ?? 10_000),
      });
    } catch (error) {
      // Unreachable, timed out, or (in a browser) refused by CORS: CORS_ORIGIN must allow this page.
      return this.failed(`POST /v1/ws-ticket failed (${(error as Error)?.message ?? error}): the server is unreachable, or CORS_ORIGIN does not allow this page.`);
    }
    if (this.auto && (res.status === 404 || res.status === 405)) return this.failed(`POST /v1/ws-ticket answered ${res.status}: this route has no ticket endpoint.`);
    const body = (await res.json().catch(() => undefined)) as (Partial<ErrorPayload> & Partial<TicketResult>) | undefined;
    if (!res.ok || !body?.ticket) return { refused: { status: res.status, body } };
    return { url: `${url}${url.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(body.ticket)}`, protocols: [PROTOCOL], transport };
  }

  /**
   * An attempt by `transport` failed before the server could read the token. With 'auto' the next
   * attempt tries the other transport; returns whether it will.
   */
  switchFrom(transport: Transport): boolean {
    if (this.auto) this.next = transport === 'subprotocol' ? 'ticket' : 'subprotocol';
    return this.auto;
  }

  private failed(message: string): Prepared {
    return { failed: `${message}${this.switchFrom('ticket') ? ' The next attempt sends the token in the subprotocol.' : ''}` };
  }
}

/** `ws(s)://host/v1/ws` from a socket URL or an http(s) base URL. */
export function socketUrl(url: string): string {
  const withScheme = url.replace(/^http(s?):/, 'ws$1:');
  return /\/v1\/ws(\?|$)/.test(withScheme) ? withScheme : `${withScheme.replace(/\/+$/, '')}/v1/ws`;
}
