/**
 * Free loopback ports for the servers the tests and the benchmark start (throwaway Redis and
 * Postgres, the benchmark's processes).
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';

/** The kernel's range for outgoing connections' local ports. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high) return [low, high];
  } catch {
    // not Linux
  }
  return [32768, 60999];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port nobody listens on right now, chosen outside the kernel's range for outgoing
 * connections: a server stopped and started again on it must find it still free (an outgoing
 * socket could take an ephemeral port meanwhile, and a client retrying a port in that range
 * while nothing listens can even connect to itself).
 */
export async function freePort(): Promise<number> {
  const [low, high] = ephemeralRange();
  // The widest stretch of unprivileged ports outside [low, high].
  const spans = ([[10_000, low - 1], [high + 1, 65_535]] as Array<[number, number]>).filter(([a, b]) => b - a >= 1_000);
  for (let attempt = 0; attempt < 50 && spans.length > 0; attempt++) {
    const [a, b] = spans[attempt % spans.length]!;
    const port = a + Math.floor(Math.random() * (b - a + 1));
    if (await canListen(port)) return port;
  }
  // No room outside the range: the kernel's pick.
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
