/**
 * The fixture most suites share: one stack with one node, started before the first test and
 * closed after the last, and WebSocket clients that are closed after each test.
 */
import type { Test } from 'uvu';
import type { Roles, RunningNode } from '../../app/node.js';
import type { LlmSimOptions } from '../../workers/llm-sim.js';
import { createStack, type Backend, type TestStack } from './stack.js';
import { TestClient } from './client.js';
import { restBase } from './rest-client.js';

export interface StackCtx {
  stack: TestStack;
  /** The node started before the first test. */
  node: RunningNode;
  /** Its WebSocket URL. */
  url: string;
  /** Its REST base URL. */
  base: string;
  /** Clients to close after each test (`connect` adds to them). */
  clients: TestClient[];
}

export interface StackOptions<C extends StackCtx> {
  backend?: Backend;
  env?: Record<string, string>;
  sim?: LlmSimOptions;
  /** The node's roles (default: gateway and worker). */
  roles?: Partial<Roles>;
  /** Runs once the node is up: the suite's own fields. */
  setup?: (ctx: C) => Promise<void> | void;
  /** Runs after the last test, before the stack closes. */
  teardown?: (ctx: C) => Promise<void> | void;
}

/** Registers the suite's before, after.each and after hooks. */
export function useStack<C extends StackCtx>(test: Test<C>, options: StackOptions<C> = {}): void {
  test.before(async (ctx) => {
    ctx.stack = await createStack({ backend: options.backend, env: options.env, sim: options.sim });
    ctx.node = await ctx.stack.start(options.roles);
    // A worker-only node has no URLs.
    ctx.url = ctx.node.gateway ? ctx.stack.wsUrl(ctx.node) : '';
    ctx.base = ctx.node.gateway ? restBase(ctx.node) : '';
    ctx.clients = [];
    await options.setup?.(ctx);
  });
  test.after.each((ctx) => {
    for (const client of ctx.clients.splice(0)) client.close();
  });
  test.after(async (ctx) => {
    if (ctx.node) await options.teardown?.(ctx);
    await ctx.stack?.close();
  });
}

/** A client of `sub` in `workspace`, connected to `url` (the suite's node) and past session.ready. */
export async function connect(ctx: StackCtx, sub: string, workspace = 'acme', url = ctx.url): Promise<TestClient> {
  const client = await TestClient.connect(url, { token: await ctx.stack.token(sub, workspace) });
  ctx.clients.push(client);
  await client.next((f) => f.type === 'session.ready');
  return client;
}

/**
 * `test`, but on Postgres only (the `redis` and `scaled` backends): for tests whose code path is
 * the same on every backend (plain queries, auth). An embedded node costs seconds to start, so it
 * runs only the backend-specific paths (in-process broker, in-process queue wake-ups).
 */
export function redisOnlyTest<C>(test: Test<C>, backend: Backend) {
  return (name: string, fn: (ctx: C) => Promise<void>): void => {
    if (backend !== 'embedded') test(name, fn);
  };
}
