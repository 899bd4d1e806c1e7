/**
 * The remote key set (JWKS_URL), on jose's `createRemoteJWKSet`, with the timings that decide how
 * fast a rotation is seen:
 *
 * - a key published by the identity provider is found within `cooldownMs`: a token whose key the
 *   set lacks makes jose fetch the set again, at most once per `cooldownMs`;
 * - a key it removed stops verifying within `cacheMaxAgeMs` (plus one fetch): the set is fetched
 *   again before a token is checked against a set older than that, and a verified token served
 *   from the verifier's cache starts that fetch in the background (`refreshIfStale`);
 * - `version` changes when a fetch brings different keys, so the verifier knows which cached
 *   tokens to check again.
 *
 * A fetch that fails leaves the set as it was; the outage is logged once, and its end once.
 */
import { createRemoteJWKSet, jwksCache, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { isKeySetFailure } from './jose-errors.js';

export interface KeySetOptions {
  url: string;
  /** JWKS_CACHE_MAX_AGE_MS: how long a fetched set is used before it is fetched again. */
  cacheMaxAgeMs: number;
  /** JWKS_COOLDOWN_MS: the least time between two fetches a missing key may cause (at most cacheMaxAgeMs). */
  cooldownMs: number;
  /** How long one fetch may take. @defaultValue 5000 */
  timeoutMs?: number;
  log?: Logger;
}

export interface KeySet {
  /** The key resolver for jose's jwtVerify. */
  readonly resolve: JWTVerifyGetKey;
  /** When the set in use arrived (ms since the epoch); 0 before the first fetch. */
  readonly fetchedAt: number;
  /** Changes whenever a fetch brings keys that differ from the ones before. */
  readonly version: number;
  /** How long until a key missing from the set may cause a fetch (0 when it may now). */
  retryInMs(): number;
  /** Fetches the set in the background when it is older than cacheMaxAgeMs and no fetch is under way. */
  refreshIfStale(): void;
}

export function createKeySet(options: KeySetOptions): KeySet {
  const cooldownMs = Math.min(options.cooldownMs, options.cacheMaxAgeMs);
  // jose writes each fetched set and its time here (`uat`); we only read it.
  const cache: { uat?: number; jwks?: unknown } = {};
  const remote = createRemoteJWKSet(new URL(options.url), {
    timeoutDuration: options.timeoutMs ?? 5_000,
    cooldownDuration: cooldownMs,
    cacheMaxAge: options.cacheMaxAgeMs,
    [jwksCache]: cache as Record<string, never>,
  });
  let seenAt = 0;
  let keys = '';
  let version = 0;
  let down = false;

  // Called after every jose call that may have fetched: picks up what a fetch brought.
  const observe = () => {
    if (down && cache.uat !== undefined && cache.uat !== seenAt) {
      down = false;
      options.log?.info('the key set (JWKS_URL) answers again');
    }
    if (cache.uat === undefined || cache.uat === seenAt) return;
    seenAt = cache.uat;
    const fetched = JSON.stringify(cache.jwks);
    if (fetched !== keys) {
      keys = fetched;
      version++;
    }
  };
  const failed = (error: unknown) => {
    if (down || !isKeySetFailure(error)) return;
    down = true;
    options.log?.warn({ err: error }, 'the key set (JWKS_URL) cannot be fetched; tokens it would verify are refused as unavailable');
  };

  const resolve: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      failed(error);
      throw error;
    } finally {
      observe();
    }
  };

  return {
    resolve,
    get fetchedAt() {
      return seenAt;
    },
    get version() {
      return version;
    },
    retryInMs: () => (seenAt === 0 ? 0 : Math.max(0, seenAt + cooldownMs - Date.now())),
    refreshIfStale() {
      if (seenAt === 0 || remote.fresh || remote.reloading) return;
      remote.reload().then(observe, (error: unknown) => {
        failed(error);
        observe();
      });
    },
  };
}
