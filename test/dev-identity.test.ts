/**
 * One development identity: in embedded development mode the start-up banner's token, the demo
 * page's token (GET /dev/token) and `npm run token` with no options are all user `dev` in
 * workspace `dev`, so what one creates the others see. The server and the token CLI run as child
 * processes on one DATA_DIR (its generated secret), as a developer runs them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { cleanEnv, run, type Child } from './support/process.js';
import { rest } from './support/rest-client.js';

interface Ctx {
  dataDir: string;
  children: Child[];
}

const test = suite<Ctx>('dev identity');

test.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'convo-dev-identity-'));
  ctx.children = [];
});
test.after(async (ctx) => {
  for (const child of ctx.children) child.kill('SIGKILL');
  await rm(ctx.dataDir, { recursive: true, force: true });
});

/** `node --import tsx scripts/token.ts ...args` on the suite's DATA_DIR: its exit code, stdout and stderr. */
async function tokenCli(ctx: Ctx, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = run('node', ['--import', 'tsx', 'scripts/token.ts', ...args], cleanEnv({ DATA_DIR: ctx.dataDir }));
  ctx.children.push(child);
  const code = await child.exited(30_000);
  return { code, out: child.stdout(), err: child.stderr() };
}

test('the banner, the demo page and the token CLI sign in as the same user in the same workspace', async (ctx) => {
  const server = run('node', ['--import', 'tsx', 'app/main.ts'], cleanEnv({ DATA_DIR: ctx.dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' }));
  ctx.children.push(server);
  const [, port] = await server.waitFor(/ready: ws:\/\/127\.0\.0\.1:(\d+)\/v1\/ws/, 60_000);
  const [, bannerToken] = await server.waitFor(/-H 'Authorization: Bearer ([^']+)'/);
  assert.match(server.stdout(), /Connect as user "dev" in workspace "dev"/, 'the banner says who its token is for');
  const base = `http://127.0.0.1:${port}`;

  const page = await rest(base, 'GET', '/dev/token');
  assert.is(page.status, 200, JSON.stringify(page.body));
  const pageToken: string = page.body.token;

  const fromBanner = await rest(base, 'POST', '/v1/threads', { token: bannerToken, body: { title: 'from the banner token' } });
  assert.is(fromBanner.status, 201, JSON.stringify(fromBanner.body));
  const fromPage = await rest(base, 'POST', '/v1/threads', { token: pageToken, body: { title: 'from the demo page' } });
  assert.is(fromPage.status, 201, JSON.stringify(fromPage.body));

  // The CLI with no options, on the same DATA_DIR: the same secret and the same identity.
  const cli = await tokenCli(ctx, []);
  assert.is(cli.code, 0, cli.err);
  const cliToken = cli.out.trim();
  const claims = (token: string) => {
    const { sub, workspace_id } = decodeJwt(token);
    return { sub, workspace_id };
  };
  assert.equal(claims(cliToken), { sub: 'dev', workspace_id: 'dev' });
  assert.equal(claims(bannerToken!), claims(cliToken), 'the banner token is for the same identity');
  assert.equal(claims(pageToken), claims(cliToken), 'the demo page token is for the same identity');

  const listed = await rest(base, 'GET', '/v1/threads', { token: cliToken });
  assert.is(listed.status, 200, JSON.stringify(listed.body));
  const ids = listed.body.threads.map((t: { id: string }) => t.id).sort();
  assert.equal(ids, [fromBanner.body.id, fromPage.body.id].sort(), 'the CLI token lists the threads the banner and page tokens created');

  server.kill('SIGTERM');
  assert.is(await server.exited(), 0);
});

test("the CLI's --help names the default identity; --personal mints personal:<sub>; a personal: workspace is refused", async (ctx) => {
  const help = await tokenCli(ctx, ['--help']);
  assert.is(help.code, 0, help.err);
  assert.match(help.out, /--sub\s+the user id.*default: dev/);
  assert.match(help.out, /--workspace\s+the workspace.*default: dev/);
  assert.match(help.out, /With no options the token is for user "dev" in workspace "dev"/);

  const personal = await tokenCli(ctx, ['--sub', 'alice', '--personal']);
  assert.is(personal.code, 0, personal.err);
  const payload = decodeJwt(personal.out.trim());
  assert.equal([payload.sub, payload.workspace_id], ['alice', undefined], 'no workspace claim: the server puts alice in personal:alice');

  const refused = await tokenCli(ctx, ['--workspace', 'personal:bob']);
  assert.is(refused.code, 1);
  assert.is(refused.out, '', 'no token printed');
  assert.match(refused.err, /--workspace: the server refuses a workspace claim starting with 'personal:'/);
});

test.run();
