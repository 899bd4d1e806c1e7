/**
 * The metrics endpoint of a process that has no gateway (a worker-only process): a plain node:http
 * server answering `GET /metrics` (Prometheus text) and `GET /health`, on METRICS_PORT. A gateway
 * serves the same `/metrics` on its own port instead.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_CONTENT_TYPE, renderMetrics } from './registry.js';

export interface MetricsServer {
  port: number;
  /** Stops listening and ends open requests. Safe to call twice. */
  close(): Promise<void>;
}

/** Listens on host:port (0: an ephemeral port); rejects with the listen error (EADDRINUSE, EACCES). */
export async function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/metrics') {
      renderMetrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics collection failed\n');
        },
      );
      return;
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : '{"status":"ok"}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"code":"not_found","message":"No such route."}');
  });
  // A scraper that keeps its connection open must not hold the process at shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
