/**
 * The fixture of the suites that stop and start a backing server under a running stack
 * (redis-restart, postgres-restart): a throwaway server of the suite's own
 * (test/support/throwaway.ts), a stack that uses it with one node started, and clients closed
 * after each test. After the last test the server is started again if a test left it stopped (the
 * nodes close cleanly only with it there), then the stack is closed, then the server removed.
 */
import type { Test } from 'uvu';
import type { StackCtx } from './fixture.js';
import { createStack, type StackSetup, type TestStack } from './stack.js';
import { restBase } from './rest-client.js';

/** What a throwaway server offers (ThrowawayRedis, ThrowawayPostgres). */
export interface Restartable {
  readonly running: boolean;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface RestartStackOptions<C, S> {
  /** Starts the suite's server (startThrowawayRedis, startThrowawayPostgres). */
  server: () => Promise<S>;
  /** The stack's setup, given the server. */
  stack: (server: S) => StackSetup;
  /** The roles of the suite's node (default: gateway and worker); it must have the gateway. */
  roles?: Parameters<TestStack['start']>[0];
  /** Runs once the node is up: the suite's own fields (more nodes, say). */
  setup?: (ctx: C) => Promise<void> | void;
}

/** Registers the suite's before, after.each and after hooks; the server is kept in `ctx[key]`. */
export function useRestartStack<K extends string, S extends Restartable, C extends StackCtx & { [key in K]: S }>(
  test: Test<C>,
  key: K,
  options: RestartStackOptions<C, S>,
): void {
  test.before(async (ctx) => {
    ctx.clients = [];
    const server = await options.server();
    (ctx as Record<K, S>)[key] = server;
    ctx.stack = await createStack(options.stack(server));
    ctx.node = await ctx.stack.start(options.roles);
    ctx.url = ctx.stack.wsUrl(ctx.node);
    ctx.base = restBase(ctx.node);
    await options.setup?.(ctx);
  });
  test.after.each((ctx) => {
    for (const client of ctx.clients.splice(0)) client.close();
  });
  test.after(async (ctx) => {
    const server = (ctx as Partial<Record<K, S>>)[key];
    try {
      if (server && !server.running) await server.start().catch(() => {});
      await ctx.stack?.close();
    } finally {
      await server?.close();
    }
  });
}
