/** A JWKS endpoint served from the test process (an identity provider's key set). */
import http from 'node:http';
import type net from 'node:net';
import type { JWK } from 'jose';

export interface Hold {
  /** The held request reached the JWKS server. */
  arrived: Promise<void>;
  /** The held response was written out. */
  sent: Promise<void>;
}

export interface JwksServer {
  url: string;
  requests: number;
  /** Holds the next request for `ms` before answering it. */
  holdNext(ms: number): Hold;
  /** While true the key set answers 503 (an outage of the identity provider). */
  down: boolean;
  /** The keys served from now on (a rotation: publish a new key, remove an old one). */
  keys: JWK[];
  close(): Promise<void>;
}

export async function startJwks(keys: JWK[]): Promise<JwksServer> {
  let pending: { ms: number; arrived: () => void; sent: () => void } | undefined;
  const server = http.createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    state.requests++;
    if (state.down) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
      return;
    }
    // Read when answering: a request held by holdNext gets the keys of the moment it is answered.
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
    const hold = pending;
    pending = undefined;
    if (!hold) {
      answer();
      return;
    }
    hold.arrived();
    res.on('finish', hold.sent);
    // The delay is the slow key server itself, not a synchronisation: the test waits on `sent`.
    setTimeout(answer, hold.ms);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const state: JwksServer = {
    url: `http://127.0.0.1:${port}/jwks.json`,
    requests: 0,
    down: false,
    keys,
    holdNext(ms) {
      let arrived!: () => void;
      let sent!: () => void;
      const hold: Hold = {
        arrived: new Promise<void>((resolve) => (arrived = resolve)),
        sent: new Promise<void>((resolve) => (sent = resolve)),
      };
      pending = { ms, arrived, sent };
      return hold;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}
