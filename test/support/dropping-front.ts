/**
 * A TCP front for a gateway that reads each connection's request line and, while `dropping`,
 * closes the connection without a word: to a browser, a gateway that is down behind a TCP load
 * balancer, a proxy that does not pass WebSocket upgrades and a request head over the server's
 * limit (on the old 4 KB build) all look like this. Otherwise it passes the connection through.
 */
import net from 'node:net';

export interface DroppingFront {
  port: number;
  /** Each connection's request line, query strings shortened (`?ticket=…`, `?…`). */
  lines: string[];
  dropping: boolean;
  close(): Promise<void>;
}

export async function startDroppingFront(targetPort: number, targetHost = '127.0.0.1'): Promise<DroppingFront> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      front.lines.push(head.subarray(0, end).toString().replace(/\?(ticket=)?\S*/, (_, ticket) => (ticket ? '?ticket=…' : '?…')));
      if (front.dropping) {
        socket.destroy();
        return;
      }
      const upstream = net.connect(targetPort, targetHost, () => upstream.write(head));
      sockets.add(upstream);
      upstream.on('error', () => {});
      upstream.on('close', () => {
        sockets.delete(upstream);
        socket.destroy();
      });
      socket.on('close', () => upstream.destroy());
      socket.pipe(upstream, { end: false });
      upstream.pipe(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const front: DroppingFront = {
    port: (server.address() as net.AddressInfo).port,
    lines: [],
    dropping: true,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return front;
}
