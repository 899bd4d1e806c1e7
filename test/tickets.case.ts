import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Principal } from '../server/auth/principal.js';
import { createTicketStore, type TicketStore } from '../server/tickets/index.js';
import { testRedis, uniquePrefix } from './support/database.js';
import { clusterConnections, startThrowawayRedisCluster, type ThrowawayRedisCluster } from './support/throwaway-redis-cluster.js';
import { sleep, within } from './support/wait.js';

/** `cluster`: the Redis store on a throwaway Redis Cluster, started and removed by the suite. */
export type TicketBackend = 'memory' | 'redis' | 'cluster';

interface Ctx {
  cluster?: ThrowawayRedisCluster;
  stores: TicketStore[];
}

const OP_MS = 5_000;

const principal = (userId: string): Principal => ({ userId, workspaceId: 'acme', roles: ['member'], expiresAt: new Date('2030-01-01T00:00:00.000Z') });

/**
 * The TicketStore contract (server/tickets/ticket-store.ts) on every implementation: a ticket gives
 * its principal back once, never twice, never after its lifetime; tickets are independent; two
 * stores sharing Redis (two gateways) see each other's tickets.
 */
export function ticketSuite(backend: TicketBackend): void {
  const test = suite<Ctx>(`tickets (${backend})`);

  function open(ctx: Ctx, prefix = uniquePrefix()): TicketStore {
    const store = backend === 'memory'
      ? createTicketStore({ kind: 'memory' })
      : createTicketStore({ kind: 'redis', redis: backend === 'cluster' ? clusterConnections(ctx.cluster!, prefix) : testRedis(prefix) });
    ctx.stores.push(store);
    return store;
  }

  test.before(async (ctx) => {
    ctx.stores = [];
    if (backend === 'cluster') ctx.cluster = await startThrowawayRedisCluster();
  });
  test.after(async (ctx) => {
    await within(Promise.all(ctx.stores.map((store) => store.close())), OP_MS, 'closing the stores');
    await ctx.cluster?.close();
  });

  test('a ticket is redeemed once for its principal; an unknown ticket gives nothing', async (ctx) => {
    const store = open(ctx);
    const ticket = await within(store.issue(principal('alice'), 30_000), OP_MS, 'issue');
    assert.match(ticket, /^tk_[A-Za-z0-9_-]{32}$/);
    assert.equal(await within(store.redeem(ticket), OP_MS, 'redeem'), principal('alice'));
    assert.is(await store.redeem(ticket), undefined, 'not twice');
    assert.is(await store.redeem('tk_unknown'), undefined);
  });

  test('tickets are independent, and redeemed once however many redeem at once', async (ctx) => {
    const store = open(ctx);
    const users = Array.from({ length: 50 }, (_, i) => `user${i}`);
    const tickets = await Promise.all(users.map((user) => store.issue(principal(user), 30_000)));
    assert.is(new Set(tickets).size, users.length);
    const racing = await Promise.all([store.redeem(tickets[0]!), store.redeem(tickets[0]!), store.redeem(tickets[0]!)]);
    assert.is(racing.filter(Boolean).length, 1, 'one of three racing redeems wins');
    const redeemed = await Promise.all(tickets.slice(1).map((ticket) => store.redeem(ticket)));
    assert.equal(redeemed.map((p) => p?.userId), users.slice(1));
  });

  test('a ticket past its lifetime gives nothing', async (ctx) => {
    const store = open(ctx);
    const ticket = await store.issue(principal('late'), 100);
    await sleep(250); // a lifetime to pass: the ticket's 100 ms
    assert.is(await store.redeem(ticket), undefined);
  });

  if (backend !== 'memory') {
    test('two stores on one Redis (two gateways) share tickets; another prefix does not', async (ctx) => {
      const prefix = uniquePrefix();
      const a = open(ctx, prefix);
      const b = open(ctx, prefix);
      const other = open(ctx);
      const ticket = await a.issue(principal('roamer'), 30_000);
      assert.is(await other.redeem(ticket), undefined, 'another deployment does not see it');
      assert.equal(await b.redeem(ticket), principal('roamer'), 'redeemed on the other gateway');
      assert.is(await a.redeem(ticket), undefined, 'and then nowhere');
    });
  }

  test.run();
}
