/**
 * Whether a request comes from the machine the server runs on, for routes that hand out
 * development credentials (`GET /dev/token`). Both must hold, because each alone can be faked:
 * - the peer address must be a loopback one: a request from another machine never is, whatever it
 *   claims in its headers;
 * - the Host header must name a loopback host (localhost, *.localhost, 127.0.0.0/8, [::1]): a page
 *   on another site that rebinds its own name to 127.0.0.1 (DNS rebinding) reaches the server from
 *   a loopback peer, but its requests carry its own name as Host.
 */

/** A peer address as uWS writes it: `127.0.0.1`, `::1`, or eight groups of four hex digits. */
export function isLoopbackPeer(address: string): boolean {
  const text = address.trim().toLowerCase();
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(text) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(text)) return true;
  const groups = expandIpv6(text);
  if (!groups) return false;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  // ::1, or 127.x.x.x mapped into IPv6 (::ffff:7f00:1).
  return (zeros(0, 7) && groups[7] === 1) || (zeros(0, 5) && groups[5] === 0xffff && groups[6]! >> 8 === 127);
}

/** A Host header (`name[:port]`, `[v6]:port`) that names this machine's loopback interface. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const text = host.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return isLoopbackPeer(bracketed[1]!);
  const name = /^([a-z0-9.-]+)(?::\d+)?$/.exec(text)?.[1]?.replace(/\.$/, '');
  if (!name) return false;
  return name === 'localhost' || name.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The eight 16-bit groups of an IPv6 address (with `::` expanded), or undefined. */
function expandIpv6(text: string): number[] | undefined {
  if (!text.includes(':') || !/^[0-9a-f:]+$/.test(text)) return undefined;
  const [head, tail, ...more] = text.split('::');
  if (more.length > 0) return undefined;
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const left = part(head);
  const right = part(tail);
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16));
}
