/**
 * A TCP proxy in front of a gateway, on an ephemeral port, for network faults the server cannot
 * make by itself: refusing connections (offline), cutting every connection at once, and a
 * half-open connection that carries the client's frames but delivers nothing back (`mute`).
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** How many client connections it has accepted. */
  accepted(): number;
  /** While refusing, new connections are closed at once (the client sees a failed connect). */
  refuse(on: boolean): void;
  /** Closes every open connection abruptly (the client sees 1006). */
  cut(): void;
  /** Open connections stop delivering server → client bytes (the server still reads the client). */
  mute(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; muted: boolean }>();
  let refusing = false;
  let count = 0;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    count += 1;
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream, muted: false };
    pairs.add(pair);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!pair.muted) client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => count,
    refuse(on) {
      refusing = on;
    },
    cut() {
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    mute() {
      for (const pair of pairs) pair.muted = true;
    },
    async close() {
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
