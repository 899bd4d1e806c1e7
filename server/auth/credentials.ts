/** Where the JWT of a WebSocket handshake comes from. */
import { PROTOCOL } from '../../protocol/codes.js';

export interface UpgradeCredentials {
  token?: string;
  /** The Sec-WebSocket-Protocol value to answer with ('' for none). Never contains the token. */
  protocol: string;
}

/**
 * Finds the token in, in order: `Authorization: Bearer`, a `bearer.<jwt>` subprotocol entry, or
 * the `access_token` query parameter.
 */
export function extractCredentials(authorization: string, protocolHeader: string, accessToken: string): UpgradeCredentials {
  const offered = protocolHeader.split(',').map((p) => p.trim()).filter(Boolean);
  const protocol = offered.includes(PROTOCOL) ? PROTOCOL : '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  if (bearer) return { token: bearer, protocol };
  const fromProtocol = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
  if (fromProtocol) return { token: fromProtocol, protocol };
  return { token: accessToken || undefined, protocol };
}
