/**
 * The REST mirror: the same operations, auth and isolation as the WebSocket frames, under /v1.
 * Described in /v1/openapi.json (server/rest/openapi.ts), built from the same schemas.
 */
import { requestValidators } from '../../protocol/validate.js';
import type { GatewayServices } from '../handlers/context.js';
import { RequestError } from '../errors.js';
import { createThread, deleteThread, getThread, listThreads, threadHistory, updateThread } from '../operations/threads.js';
import { sendMessage } from '../operations/messages.js';
import { cancelRun } from '../operations/runs.js';
import { searchMessages } from '../operations/search.js';
import { pollEvents, MAX_WAIT_MS } from '../operations/events.js';
import { createAgent, deleteAgent, getAgent, listAgents, updateAgent } from '../operations/agents.js';
import type { RestKit } from './rest-kit.js';
import { TICKET_TTL_MS } from '../tickets/index.js';

const ok = (body: unknown, status = 200) => ({ status, body });

/** A whole-number query parameter, or a clear 400. */
function intParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RequestError('invalid_request', `query.${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function boolParam(query: URLSearchParams, name: string): boolean | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw !== 'true' && raw !== 'false') throw new RequestError('invalid_request', `query.${name} must be true or false`);
  return raw === 'true';
}

export function mountRoutes(kit: RestKit, services: GatewayServices): void {
  const owner = (principal: { workspaceId: string; userId: string }) => ({ workspaceId: principal.workspaceId, userId: principal.userId });

  kit.route('get', '/v1/threads', {}, async ({ principal, query }) =>
    ok(await listThreads(services, owner(principal), {
      cursor: query.get('cursor') || undefined,
      limit: intParam(query, 'limit', 1, 100),
      archived: boolParam(query, 'archived'),
    })),
  );
  kit.route('post', '/v1/threads', { body: requestValidators['thread.create'] }, async ({ principal, body }) =>
    ok(await createThread(services, owner(principal), body as object), 201),
  );
  kit.route('get', '/v1/threads/:id', {}, async ({ principal, params }) =>
    ok(await getThread(services, owner(principal), { thread_id: params[0]! })),
  );
  kit.route('patch', '/v1/threads/:id', { body: requestValidators['thread.patch'] }, async ({ principal, params, body }) =>
    ok(await updateThread(services, owner(principal), { ...(body as object), thread_id: params[0]! })),
  );
  kit.route('del', '/v1/threads/:id', {}, async ({ principal, params }) =>
    ok(await deleteThread(services, owner(principal), { thread_id: params[0]! })),
  );
  kit.route('get', '/v1/threads/:id/history', {}, async ({ principal, params, query }) =>
    ok(await threadHistory(services, owner(principal), {
      thread_id: params[0]!,
      before_seq: intParam(query, 'before_seq', 1, 2 ** 31 - 1),
      limit: intParam(query, 'limit', 1, 500),
    })),
  );
  kit.route('post', '/v1/threads/:id/messages', { body: requestValidators['message.post'] }, async ({ principal, params, body }) => {
    const turn = await sendMessage(services, owner(principal), { ...(body as { content: string }), thread_id: params[0]! });
    return ok(
      { thread_id: turn.threadId, message_id: turn.messageId, run_id: turn.runId, ...(turn.deduplicated ? { deduplicated: true } : {}) },
      202,
    );
  });
  // Not counted in flight (it waits without using the database); its reads take a slot each.
  kit.route('get', '/v1/threads/:id/events', { inFlight: false }, async ({ principal, params, query, signal }) =>
    ok(await pollEvents(services, owner(principal), {
      thread_id: params[0]!,
      after_seq: intParam(query, 'after_seq', 0, 2 ** 31 - 1) ?? 0,
      wait_ms: intParam(query, 'wait_ms', 0, MAX_WAIT_MS) ?? 0,
      limit: intParam(query, 'limit', 1, 1000),
    }, signal)),
  );
  kit.route('post', '/v1/runs/:id/cancel', {}, async ({ principal, params }) =>
    ok(await cancelRun(services, owner(principal), params[0]!)),
  );
  kit.route('get', '/v1/search', {}, async ({ principal, query }) => {
    const q = query.get('q')?.trim();
    if (!q) throw new RequestError('invalid_request', 'query.q is required: the words to search for');
    if (q.length > 500) throw new RequestError('invalid_request', 'query.q must be at most 500 characters');
    return ok(await searchMessages(services, owner(principal), { q, limit: intParam(query, 'limit', 1, 50) }));
  });

  kit.route('post', '/v1/ws-ticket', {}, async ({ principal }) => {
    const ticket = await services.tickets.issue(principal, TICKET_TTL_MS);
    return ok({ ticket, expires_at: new Date(Date.now() + TICKET_TTL_MS).toISOString() }, 201);
  });

  kit.route('get', '/v1/agents', {}, async ({ principal }) => ok(await listAgents(services, principal)));
  kit.route('post', '/v1/agents', { body: requestValidators['agent.create'] }, async ({ principal, body }) =>
    ok(await createAgent(services, principal, body as { name: string }), 201),
  );
  kit.route('get', '/v1/agents/:id', {}, async ({ principal, params }) => ok(await getAgent(services, principal, params[0]!)));
  kit.route('patch', '/v1/agents/:id', { body: requestValidators['agent.update'] }, async ({ principal, params, body }) =>
    ok(await updateAgent(services, principal, params[0]!, body as object)),
  );
  kit.route('del', '/v1/agents/:id', {}, async ({ principal, params }) => ok(await deleteAgent(services, principal, params[0]!)));
}
