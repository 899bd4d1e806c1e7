/**
 * The first-run experience, through the real entry points as child processes: `npm start` with no
 * configuration in an empty DATA_DIR, the printed wscat command, `npm run token`, and the
 * start-up errors a person meets.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { readFile } from 'node:fs/promises';
import { cleanEnv, run, type Child } from './support/process.js';
import { TestClient } from './support/client.js';

interface Ctx {
  dataDir: string;
  children: Child[];
}

const test = suite<Ctx>('first run');

test.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-first-run-'));
  ctx.children = [];
});
test.after(async (ctx) => {
  for (const child of ctx.children) child.kill('SIGKILL');
  await rm(ctx.dataDir, { recursive: true, force: true });
});

function npm(ctx: Ctx, args: string[], env: Record<string, string>): Child {
  const child = run('npm', args, cleanEnv(env));
  ctx.children.push(child);
  return child;
}

async function startServer(ctx: Ctx) {
  const child = npm(ctx, ['start'], { DATA_DIR: ctx.dataDir, PORT: '0', HOST: '127.0.0.1' });
  const [, url] = await child.waitFor(/ready: (ws:\/\/\S+)/, 60_000);
  const [command, token] = await child.waitFor(/npx wscat -c '\S+' -H 'Authorization: Bearer ([^']+)'/);
  const [, pid] = await child.waitFor(/"pid":(\d+)[^\n]*"msg":"started"/);
  /** SIGTERM to the server process itself, as a process manager would send it. */
  const stop = () => process.kill(Number(pid), 'SIGTERM');
  return { child, url: url!, token: token!, command: command!, stop };
}

test('npm start with no configuration serves a full turn, and the thread survives a restart', async (ctx) => {
  const first = await startServer(ctx);
  const banner = first.child.stdout();
  assert.match(banner, /store\s+embedded PGlite/);
  assert.match(banner, /broker\s+in-process/);
  assert.match(banner, /llm\s+built-in simulator/);
  assert.match(banner, /"type":"message.send"/, 'an example frame to type');
  assert.match(first.child.stdout(), /development secret/, 'warns that the secret is a development setting');
  const secretFile = path.join(ctx.dataDir, 'dev-jwt-secret');
  assert.equal((await stat(secretFile)).mode & 0o777, 0o600);

  const client = await TestClient.connect(first.url, { token: first.token });
  const ready = await client.next((f) => f.type === 'session.ready');
  assert.equal(ready.payload.user_id, 'dev');
  const expiresIn = Date.parse(ready.payload.token_expires_at) - Date.now();
  assert.ok(expiresIn > 55 * 60_000 && expiresIn <= 3600_000, 'the printed token is valid for one hour');
  const ack = await client.request('message.send', { content: 'What time is it?' });
  const done = await client.completed(ack.payload.run_id, 30_000);
  assert.equal(done.payload.status, 'completed');
  const before = client.events(ack.payload.thread_id);
  client.close();

  first.stop();
  assert.equal(await first.child.exited(), 0, 'SIGTERM shuts down cleanly');

  const second = await startServer(ctx);
  assert.not.match(second.child.stdout(), /created":true/, 'the secret is reused, not regenerated');
  // The first run's token still works: same secret.
  const again = await TestClient.connect(second.url, { token: first.token });
  await again.next((f) => f.type === 'session.ready');
  const sub = await again.request('thread.subscribe', { thread_id: ack.payload.thread_id, after_seq: 0 });
  assert.equal(sub.payload.last_seq, before.length);
  await again.completed(ack.payload.run_id);
  assert.equal(
    again.events(ack.payload.thread_id).map((e) => [e.type, e.payload.seq]),
    before.map((e) => [e.type, e.payload.seq]),
    'the thread and its events are still there',
  );
  again.close();

  // The printed wscat command, run as printed, with one frame on stdin.
  const wscat = run('sh', ['-c', second.command], cleanEnv());
  ctx.children.push(wscat);
  await wscat.waitFor(/session\.ready/, 30_000);
  wscat.proc.stdin!.write('{"type":"message.send","id":"1","payload":{"content":"Hello from wscat"}}\n');
  await wscat.waitFor(/agent_completed/, 30_000);
  assert.match(wscat.stdout(), /"type":"ack","id":"1"/);
  wscat.kill('SIGTERM');

  // npm run token signs with the same generated secret.
  const tokenRun = npm(ctx, ['run', '--silent', 'token', '--', '--sub', 'alice', '--workspace', 'acme', '--ttl', '1h'], { DATA_DIR: ctx.dataDir });
  assert.equal(await tokenRun.exited(), 0, tokenRun.stderr());
  const token = tokenRun.stdout().trim().split('\n').pop()!;
  const secret = (await readFile(secretFile, 'utf8')).trim();
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret));
  assert.equal([payload.sub, payload.workspace_id], ['alice', 'acme']);
  assert.ok(payload.exp! - payload.iat! === 3600);
  // --role goes into the claim the server reads roles from (JWT_ROLE_CLAIM).
  const roleRun = npm(ctx, ['run', '--silent', 'token', '--', '--sub', 'alice', '--role', 'admin'], { DATA_DIR: ctx.dataDir, JWT_ROLE_CLAIM: 'https://example.com/role' });
  assert.equal(await roleRun.exited(), 0, roleRun.stderr());
  const { payload: withRole } = await jwtVerify(roleRun.stdout().trim().split('\n').pop()!, new TextEncoder().encode(secret));
  assert.equal([withRole['https://example.com/role'], withRole.role], ['admin', undefined]);

  // A second process on the same DATA_DIR is refused before it opens a database of its own.
  const third = npm(ctx, ['start'], { DATA_DIR: ctx.dataDir, PORT: '0', HOST: '127.0.0.1' });
  assert.equal(await third.exited(60_000), 1);
  assert.match(third.stderr(), /^Cannot start: DATA_DIR: \S+ is in use by process \d+; [^\n]+\n$/);

  second.stop();
  assert.equal(await second.child.exited(), 0);
});

test('npm start on a PORT in use stops within 3 s with one line naming PORT, before it creates anything in DATA_DIR', async (ctx) => {
  const held = net.createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  try {
    const port = (held.address() as net.AddressInfo).port;
    const dataDir = await mkdtemp(path.join(ctx.dataDir, 'busy-port-'));
    // The build that npm start runs first, brought up to date beforehand: what is timed below is a
    // start with nothing to rebuild (test/build.test.ts times the build step on its own).
    const build = npm(ctx, ['run', 'build'], {});
    assert.equal(await build.exited(120_000), 0, build.stderr());
    const started = Date.now();
    const child = npm(ctx, ['start'], { DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });
    const code = await child.exited(60_000);
    const ms = Date.now() - started;
    assert.equal(code, 1);
    assert.match(child.stderr(), /^Cannot start: PORT: cannot listen on 127\.0\.0\.1:\d+: the port is in use[^\n]+\n$/, 'one line');
    assert.equal(await readdir(dataDir), [], 'no database opened, no secret generated');
    assert.ok(ms < 3000, `refused after ${ms} ms`);
  } finally {
    await new Promise<void>((resolve) => held.close(() => resolve()));
  }
});

const refusals: Array<[string, Record<string, string>, RegExp]> = [
  ['production without auth configuration', { NODE_ENV: 'production' }, /JWT_SECRET.*JWKS_URL/],
  ['a malformed DATABASE_URL', { DATABASE_URL: 'not a url' }, /DATABASE_URL: is not a valid URL/],
  ['an invalid PORT', { PORT: '99999' }, /PORT: must be a whole number from 0 to 65535/],
  ['an unreachable Postgres', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope' }, /DATABASE_URL: cannot reach or migrate Postgres/],
  ['an unreachable Redis', { REDIS_URL: 'redis://127.0.0.1:1' }, /REDIS_URL: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/],
  ['an unreachable Redis Cluster', { REDIS_CLUSTER_NODES: '127.0.0.1:1' }, /REDIS_CLUSTER_NODES: cannot reach Redis at cluster 127\.0\.0\.1:1/],
  ['both REDIS_URL and REDIS_CLUSTER_NODES', { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, /REDIS_CLUSTER_NODES: and REDIS_URL are both set/],
];

for (const [what, env, line] of refusals) {
  test(`start-up refuses ${what} with one line naming the setting`, async (ctx) => {
    const dataDir = await mkdtemp(path.join(ctx.dataDir, 'refusal-'));
    const child = run('node', ['--import', 'tsx', 'app/main.ts'], cleanEnv({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env }));
    ctx.children.push(child);
    const code = await child.exited(30_000);
    assert.is.not(code, 0);
    const lines = child.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line, no stack trace: ${child.stderr()}`);
    assert.match(lines[0]!, line);
  });
}

test.run();
