/**
 * Process entry: `node dist/server.js [all|gateway|worker]`, built from this file by
 * scripts/build-server.mjs (`node --import tsx app/main.ts` runs the source as it is). Reads the
 * configuration once, starts the parts, prints how to connect, and shuts down cleanly on
 * SIGTERM/SIGINT.
 */
import { loadConfig, ConfigError, type Config } from '../config/config.js';
import { createLogger } from '../server/logger.js';
import { startNode, type RunningNode } from './node.js';
import { assertListenPortsFree } from './port-check.js';
import { DEV_IDENTITY, signToken } from '../server/auth.js';

const role = process.argv[2] ?? 'all';
if (!['all', 'gateway', 'worker'].includes(role)) {
  console.error(`usage: server [all|gateway|worker] (got '${role}')`);
  process.exit(2);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const log = createLogger(config.logLevel);
  let node: RunningNode;
  try {
    const roles = { gateway: role !== 'worker', worker: role !== 'gateway' };
    // Before the store opens (PGlite and the migrations take seconds): a port in use is said at once.
    await assertListenPortsFree(config, roles);
    node = await startNode(config, roles, log);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  // A promise nobody awaited that rejects must not end the process (Node's default): the work it
  // belonged to has failed already; it is logged and the server goes on.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
  // A development token only when the server made its own secret and is not in production: with a
  // configured secret (or key set) a printed token would be a working credential for every gateway.
  const devMode = node.devSecretFile !== undefined && config.nodeEnv !== 'production';
  // Before it says it is ready: a process manager may stop it as soon as it does.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Turns get SHUTDOWN_GRACE_MS; the rest of the shutdown (sockets, queue, pools) gets 15 s more.
    const force = setTimeout(() => process.exit(1), config.worker.shutdownGraceMs + 15_000);
    force.unref();
    // The log is written asynchronously: flush it, or the last lines (the shutdown itself) are lost.
    const exit = (code: number) => log.flush(() => process.exit(code));
    node.close().then(() => exit(0), () => exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ role, port: node.gateway?.port, metrics_port: node.metricsPort ?? node.gateway?.port, ...node.modes }, 'started');
  if (node.gateway) await printBanner(node, config, devMode);
}

async function printBanner(node: RunningNode, config: Readonly<Config>, devMode: boolean): Promise<void> {
  const { host, auth } = config;
  // 127.0.0.1 rather than localhost: Node resolves localhost to ::1 first, and 0.0.0.0 is IPv4.
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host;
  const url = `ws://${shownHost}:${node.gateway!.port}/v1/ws`;
  const lines = [
    '',
    `  Conversation server ready: ${url}`,
    ...Object.entries(node.modes).map(([part, mode]) => `    ${part.padEnd(7)} ${mode}`),
  ];
  if (!devMode) {
    lines.push(
      '',
      '  Clients connect with a JWT signed for this server (JWT_SECRET or a key from JWKS_URL).',
      '  With JWT_SECRET set, mint one for a test user with:',
      "    npm run -s token -- --sub alice --workspace acme --ttl 1h",
    );
  } else if (node.jwtSecret) {
    const token = await signToken(node.jwtSecret, {
      ...DEV_IDENTITY, ttlSeconds: 3600, workspaceClaim: auth.workspaceClaim, issuer: auth.issuer, audience: auth.audience,
    });
    // The demo page signs in with GET /dev/token, which only the embedded store and bus serve.
    if (node.devTokens) lines.push('', `  Chat in a browser (the <convo-chat> widget): http://${shownHost}:${node.gateway!.port}/`);
    lines.push(
      '',
      `  Connect as user "${DEV_IDENTITY.sub}" in workspace "${DEV_IDENTITY.workspace}" (token valid for 1 hour):`,
      `    npx wscat -c '${url}' -H 'Authorization: Bearer ${token}'`,
      '  then type:',
      '    {"type":"message.send","id":"1","payload":{"content":"What time is it?"}}',
    );
  }
  lines.push('');
  process.stdout.write(lines.join('\n') + '\n');
}

function fail(message: string): never {
  process.stderr.write(`Cannot start: ${message}\n`);
  process.exit(1);
}

main().catch((error) => {
  process.stderr.write(`Cannot start: ${(error as Error)?.stack ?? error}\n`);
  process.exit(1);
});
