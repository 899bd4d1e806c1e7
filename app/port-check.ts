/**
 * Whether a port can be listened on, asked before start-up does anything expensive: opening the
 * embedded database and migrating it take seconds, and a server that is going to find its port
 * taken should say so at once. The listen that follows still decides (something may take the port
 * in between); this only makes the common refusal quick.
 */
import net from 'node:net';
import { ConfigError, type Config } from '../config/config.js';

/**
 * The port a process of this role will listen on, checked before anything else starts: PORT for
 * one with a gateway, METRICS_PORT for a worker-only one (the messages are the ones the later
 * listens give).
 */
export async function assertListenPortsFree(config: Readonly<Config>, roles: { gateway: boolean }): Promise<void> {
  const { host, port, metricsPort } = config;
  if (roles.gateway) {
    await assertPortFree(host, port, 'PORT', () => `cannot listen on ${host}:${port}: the port is in use (or not permitted); stop what holds it or set another PORT`);
  } else {
    await assertPortFree(host, metricsPort, 'METRICS_PORT', (code) => `cannot listen on ${host}:${metricsPort} for /metrics (${code}); set METRICS_PORT to a free port, or 0 for any`);
  }
}

/**
 * Resolves when `host:port` could be listened on right now; otherwise throws a ConfigError naming
 * `setting` with `message(code)`. Port 0 (any free port) always passes.
 */
export async function assertPortFree(host: string, port: number, setting: string, message: (code: string) => string): Promise<void> {
  if (port === 0) return;
  const probe = net.createServer();
  const code = await new Promise<string | undefined>((resolve) => {
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    // Exclusive, as the gateway listens: no sharing through a cluster primary either.
    probe.listen({ host, port, exclusive: true }, () => resolve(undefined));
  });
  if (probe.listening) await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (code !== undefined) throw new ConfigError(setting, message(code));
}
