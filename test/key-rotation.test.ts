/**
 * Key rotation at the identity provider, against a real JWKS server (test/support/jwks.ts) and a
 * gateway that trusts only it, through the upgrade (HTTP and close answers) and REST:
 *
 * - a token signed with a newly published key is `unavailable` (503 / 4503) with a retry hint
 *   until the gateway may fetch the set again (JWKS_COOLDOWN_MS), never 401, and accepted on the
 *   retry the hint asks for;
 * - a token whose kid a set fetched for it lacks is 401;
 * - a removed key stops verifying within JWKS_CACHE_MAX_AGE_MS, for tokens never seen and for
 *   tokens the gateway had verified and remembered;
 * - while the key set is down, remembered tokens stay valid.
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { useStack, type StackCtx } from './support/fixture.js';
import { startJwks, type JwksServer } from './support/jwks.js';
import { FORMS, present, type Answer, type Form } from './support/auth-probe.js';
import { waitFor } from './support/wait.js';
import type { RunningNode } from '../app/node.js';

type Key = { kid: string; jwk: JWK; privateKey: CryptoKey };

interface Ctx extends StackCtx {
  jwks: JwksServer;
}

const test = suite<Ctx>('key rotation');
useStack(test, {
  roles: { gateway: true, worker: false },
  setup: async (ctx) => void (ctx.jwks = await startJwks([])),
  teardown: (ctx) => ctx.jwks.close(),
});

/** The default JWKS_COOLDOWN_MS. */
const COOLDOWN_MS = 2_000;
/** How much later than the set's own timing an answer may come on a loaded machine. */
const SLACK_MS = 1_500;

async function newKey(): Promise<Key> {
  const pair = await generateKeyPair('EdDSA', { extractable: true });
  const kid = `k-${randomUUID().slice(0, 8)}`;
  return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'EdDSA', use: 'sig' } };
}

/** A token never presented before (its own jti), signed by `key` (or claiming `kid` with it). */
function sign(key: Key, sub = 'rotator', kid = key.kid): Promise<string> {
  return new SignJWT({ workspace_id: 'acme' })
    .setProtectedHeader({ alg: 'EdDSA', kid })
    .setSubject(sub)
    .setJti(randomUUID())
    .setExpirationTime('10m')
    .sign(key.privateKey);
}

async function jwksNode(ctx: Ctx, env: Record<string, string> = {}): Promise<number> {
  const node: RunningNode = await ctx.stack.start({ gateway: true, worker: false }, { JWT_SECRET: '', JWKS_URL: ctx.jwks.url, ...env });
  return node.gateway!.port;
}

/** Asserts `unavailable` with a retry hint, in the form's own words (Retry-After, or close 4503 and its reason). */
function assertUnavailable(answer: Answer, what: string): number {
  assert.is(answer.status, 503, `${what}: 503 (${JSON.stringify(answer)})`);
  assert.equal([answer.code, answer.retryable], ['unavailable', true], `${what}: unavailable, retryable`);
  assert.type(answer.retryAfterMs, 'number', `${what}: retry_after_ms`);
  if (answer.form === 'close') {
    assert.is(answer.closeCode, 4503, `${what}: close 4503`);
    assert.is(answer.closeReason, `unavailable retry_after_ms=${answer.retryAfterMs}`, `${what}: the close reason carries the hint`);
  } else {
    assert.is(answer.retryAfter, String(Math.ceil(answer.retryAfterMs! / 1000)), `${what}: Retry-After in whole seconds`);
  }
  return answer.retryAfterMs!;
}

function assertUnauthenticated(answer: Answer, what: string, message: RegExp): void {
  assert.is(answer.status, 401, `${what}: 401 (${JSON.stringify(answer)})`);
  assert.equal([answer.code, answer.retryable], ['unauthenticated', false], `${what}: unauthenticated, final`);
  if (answer.form === 'close') assert.equal([answer.closeCode, answer.closeReason], [4001, 'unauthenticated'], `${what}: close 4001`);
  assert.match(answer.message!, message, `${what}: message`);
}

/** Until the hint the gateway gave has passed: retrying after it is the contract under test. */
function hintPassed(ms: number): Promise<void> {
  const at = Date.now() + ms;
  return waitFor(() => Date.now() >= at, ms + 1_000, `${ms} ms to pass`);
}

/**
 * The answer once the set was fetched for the token: a 503 with a retry hint (the token came while
 * the set cooled down) is retried once after the hint, as a client would.
 */
async function settled(ctx: Ctx, port: number, form: Form, token: string, what: string): Promise<Answer> {
  const answer = await present(port, form, token);
  if (answer.status !== 503) return answer;
  const requests = ctx.jwks.requests;
  await hintPassed(assertUnavailable(answer, what));
  const retry = await present(port, form, token);
  assert.is(ctx.jwks.requests, requests + 1, `${what}: the retry fetched the set`);
  return retry;
}

test('a newly published key: unavailable with a retry hint while the set may not be fetched again, accepted on the retry; never 401', async (ctx) => {
  const first = await newKey();
  ctx.jwks.keys = [first.jwk];
  const port = await jwksNode(ctx);
  const remembered = await sign(first, 'remembered');
  // The first token makes the gateway fetch the set: from then on it cools down for COOLDOWN_MS.
  let fetchSentAt = Date.now();
  assert.ok((await present(port, 'rest', remembered)).accepted, 'a token of the first key');

  const hints: number[] = [];
  for (const form of FORMS) {
    const key = await newKey();
    ctx.jwks.keys = [...ctx.jwks.keys, key.jwk];
    const publishedAt = Date.now();
    const token = await sign(key);
    const requests = ctx.jwks.requests;
    const sentAt = Date.now();
    const answer = await present(port, form, token);
    const answeredAt = Date.now();
    if (answer.accepted) {
      // Only a fetch can have brought the key, and none may happen before the cooldown is over.
      assert.ok(answeredAt >= fetchSentAt + COOLDOWN_MS, `${form}: accepted ${answeredAt - fetchSentAt} ms after the last fetch was sent`);
      fetchSentAt = sentAt;
    } else {
      const hint = assertUnavailable(answer, `${form}, a key published ${answeredAt - publishedAt} ms ago`);
      assert.match(answer.message!, /No key in the key set matches the token yet/);
      assert.is(ctx.jwks.requests, requests, `${form}: no fetch while the set cools down`);
      // The time left of the cooldown: at most all of it, at least what is left of it by our clock.
      assert.ok(hint <= COOLDOWN_MS, `${form}: hint ${hint} ms`);
      assert.ok(hint >= fetchSentAt + COOLDOWN_MS - answeredAt - 5, `${form}: hint ${hint} ms ends before the cooldown can have`);
      hints.push(hint);
      await hintPassed(hint);
      fetchSentAt = Date.now();
      const retry = await present(port, form, token);
      assert.ok(retry.accepted, `${form}: the retry after ${hint} ms is accepted (${JSON.stringify(retry)})`);
      assert.is(ctx.jwks.requests, requests + 1, `${form}: the retry fetched the set once`);
    }
    const acceptedAfter = Date.now() - publishedAt;
    assert.ok(acceptedAfter <= COOLDOWN_MS + SLACK_MS, `${form}: accepted ${acceptedAfter} ms after the key was published`);
  }
  // Each key was published right after a fetch: every form met the cooldown at least once.
  assert.ok(hints.length > 0, 'at least one token was told to retry');
  // The set changed three times; a remembered token of a key still in it is checked again and kept.
  assert.ok((await present(port, 'rest', remembered)).accepted, 'the first key still verifies its remembered token');
  assert.ok((await present(port, 'upgrade', remembered)).accepted);
});

test('a kid the set lacks: unavailable during the cooldown, 401 once the set was fetched for it', async (ctx) => {
  const known = await newKey();
  const rogue = await newKey();
  ctx.jwks.keys = [known.jwk];
  const port = await jwksNode(ctx, { JWKS_COOLDOWN_MS: '500' });
  // A fresh gateway fetches the set for its first token: an unknown kid is then judged at once.
  assertUnauthenticated(await present(port, 'rest', await sign(rogue)), 'the first token, unknown kid', /No key in the key set matches the token\./);
  for (const form of FORMS) {
    // A kid the set does not have, and a known kid on a token another key signed.
    for (const [what, token, message] of [
      ['unknown kid', await sign(rogue), /No key in the key set matches the token\./],
      ['known kid, wrong key', await sign(rogue, 'forger', known.kid), /signature does not verify/],
    ] as const) {
      if (what === 'known kid, wrong key') {
        // The key is there: the signature decides at once, with no retry.
        assertUnauthenticated(await present(port, form, token), `${form}, ${what}`, message);
      } else {
        assertUnauthenticated(await settled(ctx, port, form, token, `${form}, ${what}`), `${form}, ${what}`, message);
      }
    }
  }
});

test('a removed key stops verifying within JWKS_CACHE_MAX_AGE_MS: remembered tokens (kept only by cache hits) and never-seen ones', async (ctx) => {
  const MAX_AGE_MS = 1_500;
  const [stays, goesFirst, goesNext] = await Promise.all([newKey(), newKey(), newKey()]);
  ctx.jwks.keys = [stays.jwk, goesFirst.jwk, goesNext.jwk];
  const port = await jwksNode(ctx, { JWKS_CACHE_MAX_AGE_MS: String(MAX_AGE_MS) });
  const staying = await sign(stays, 'stays');
  const remembered = await sign(goesFirst, 'remembered');
  for (const form of FORMS) assert.ok((await present(port, form, remembered)).accepted, `${form}: accepted before the removal`);
  assert.ok((await present(port, 'rest', staying)).accepted);

  // Removed: only the remembered token is presented, so only its cache hits can notice.
  ctx.jwks.keys = [stays.jwk, goesNext.jwk];
  let removedAt = Date.now();
  let last: Answer | undefined;
  await waitFor(async () => !(last = await present(port, 'rest', remembered)).accepted, MAX_AGE_MS + SLACK_MS, 'the remembered token to be refused');
  const refusedAfter = Date.now() - removedAt;
  assertUnauthenticated(last!, 'remembered, REST', /removed from the key set/);
  for (const form of ['upgrade', 'close'] as Form[]) {
    assertUnauthenticated(await present(port, form, remembered), `remembered, ${form}`, /removed from the key set/);
  }

  // Removed next: each attempt is a token the gateway has never seen.
  ctx.jwks.keys = [stays.jwk];
  removedAt = Date.now();
  await waitFor(async () => !(last = await present(port, 'rest', await sign(goesNext, 'newcomer'))).accepted, MAX_AGE_MS + SLACK_MS, 'new tokens of the removed key to be refused');
  const newRefusedAfter = Date.now() - removedAt;
  assertUnauthenticated(last!, 'never seen, REST', /No key in the key set matches the token\./);
  for (const form of ['upgrade', 'close'] as Form[]) {
    const what = `never seen, ${form}`;
    assertUnauthenticated(await settled(ctx, port, form, await sign(goesNext, 'newcomer'), what), what, /No key in the key set matches the token\./);
  }
  // The key that stayed verifies old and new tokens alike.
  for (const token of [staying, await sign(stays, 'stays')]) {
    for (const form of FORMS) assert.ok((await present(port, form, token)).accepted, `${form}: the staying key`);
  }
  console.log(`  removed key refused after: remembered ${refusedAfter} ms, never seen ${newRefusedAfter} ms (JWKS_CACHE_MAX_AGE_MS=${MAX_AGE_MS})`);
});

test('a key-set outage: remembered tokens stay valid on every path past JWKS_CACHE_MAX_AGE_MS; new ones are unavailable', async (ctx) => {
  const key = await newKey();
  ctx.jwks.keys = [key.jwk];
  const port = await jwksNode(ctx, { JWKS_CACHE_MAX_AGE_MS: '500' });
  const remembered = await sign(key, 'remembered');
  assert.ok((await present(port, 'rest', remembered)).accepted);
  ctx.jwks.down = true;
  const requests = ctx.jwks.requests;
  // Cache hits past the set's age fetch it in the background; that fetch fails, the hits go on.
  await waitFor(async () => {
    const answer = await present(port, 'rest', remembered);
    assert.ok(answer.accepted, `a remembered token during the outage: ${JSON.stringify(answer)}`);
    return ctx.jwks.requests > requests;
  }, 500 + SLACK_MS, 'a fetch of the stale set');
  for (const form of FORMS) assert.ok((await present(port, form, remembered)).accepted, `${form}: remembered, after a failed fetch`);
  for (const form of FORMS) {
    const answer = await present(port, form, await sign(key, 'newcomer'));
    assertUnavailable(answer, `${form}: a new token during the outage`);
    assert.match(answer.message!, /cannot be fetched/);
  }
  // Back: the next new token fetches the set (it is past its age) and is accepted.
  ctx.jwks.down = false;
  assert.ok((await present(port, 'rest', await sign(key, 'newcomer'))).accepted, 'a new token once the set answers');
});

test.run();
