/** Threads: the REST mirror of thread.create, thread.list, thread.get, thread.update, thread.delete, thread.history. */
import { LIMITS } from '../../protocol/limits.js';
import { requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { createThread, deleteThread, getThread, listThreads, threadHistory, updateThread } from '../operations/threads.js';
import { MAX_WAIT_MS, pollEvents } from '../operations/events.js';
import { json, ok, refusal } from '../http/route.js';
import { owner, route } from './deps.js';
import { idPath } from './params.js';

const notFound = refusal('No such thread, or it belongs to someone else (the two are indistinguishable).');
const list = requestSchemas['thread.list'].properties;
const history = requestSchemas['thread.history'].properties;

export const threadRoutes = [
  route({
    method: 'get',
    path: '/v1/threads',
    operationId: 'listThreads',
    tags: ['threads'],
    summary: 'List your threads',
    description: 'The caller\'s threads, most recently active first, a page at a time. Pass `next_cursor` back as `cursor` for the next page.',
    auth: 'bearer',
    cors: true,
    query: {
      type: 'object',
      properties: {
        cursor: { ...list.cursor, description: 'Opaque cursor: `next_cursor` of the previous page, exactly as received.' },
        limit: { ...list.limit, default: 20, description: 'Threads per page.' },
        archived: { ...list.archived, description: 'List archived threads instead of active ones. `true` or `false`.' },
      },
      additionalProperties: false,
    },
    responses: {
      200: json(resultSchemas.threadList, 'A page of threads.'),
      400: refusal('A query parameter is out of range, or the cursor is not valid.'),
    },
    handler: async ({ principal, query }, { services }) => ok(await listThreads(services, owner(principal), query)),
  }),
  route({
    method: 'post',
    path: '/v1/threads',
    operationId: 'createThread',
    tags: ['threads'],
    summary: 'Create a thread',
    description: 'Creates a thread bound to an agent (the default agent when `agent_id` is omitted).',
    auth: 'bearer',
    cors: true,
    body: { schema: requestSchemas['thread.create'], description: 'Same schema as the `thread.create` frame payload.' },
    responses: {
      201: json(resultSchemas.thread, 'The new thread.'),
      404: refusal('The agent was not found.'),
    },
    handler: async ({ principal, body }, { services }) => ok(await createThread(services, owner(principal), body), 201),
  }),
  route({
    method: 'get',
    path: '/v1/threads/:id',
    operationId: 'getThread',
    tags: ['threads'],
    summary: 'Get a thread',
    description: 'One of the caller\'s threads.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: { 200: json(resultSchemas.thread, 'The thread.'), 404: notFound },
    handler: async ({ principal, params }, { services }) => ok(await getThread(services, owner(principal), { thread_id: params.id })),
  }),
  route({
    method: 'patch',
    path: '/v1/threads/:id',
    operationId: 'updateThread',
    tags: ['threads'],
    summary: 'Rename or (un)archive a thread',
    description: 'Changes the title and/or the archived flag; fields left out stay as they are (an empty body changes nothing).',
    auth: 'bearer',
    cors: true,
    params: idPath,
    body: { schema: requestSchemas['thread.patch'], description: '`thread.update` without `thread_id` (it is in the path).' },
    responses: { 200: json(resultSchemas.thread, 'The updated thread.'), 404: notFound },
    handler: async ({ principal, params, body }, { services }) =>
      ok(await updateThread(services, owner(principal), { ...body, thread_id: params.id })),
  }),
  route({
    method: 'delete',
    path: '/v1/threads/:id',
    operationId: 'deleteThread',
    tags: ['threads'],
    summary: 'Delete a thread',
    description: 'Deletes the thread with its messages, runs and events; a running turn is told to stop.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: { 200: json(resultSchemas.threadDeleted, 'The thread is gone.'), 404: notFound },
    handler: async ({ principal, params }, { services }) => ok(await deleteThread(services, owner(principal), { thread_id: params.id })),
  }),
  route({
    method: 'get',
    path: '/v1/threads/:id/history',
    operationId: 'getThreadHistory',
    tags: ['threads'],
    summary: 'Page back through a thread\'s events',
    description: 'Stored events before `before_seq` (or the latest), oldest first; `has_more` says whether older ones exist.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    query: {
      type: 'object',
      properties: {
        before_seq: { ...history.before_seq, description: 'Only events with a seq below this one (omit for the latest).' },
        limit: { ...history.limit, default: 50, description: 'Events per page.' },
      },
      additionalProperties: false,
    },
    responses: { 200: json(resultSchemas.history, 'A page of stored events.'), 400: refusal('A query parameter is out of range.'), 404: notFound },
    handler: async ({ principal, params, query }, { services }) =>
      ok(await threadHistory(services, owner(principal), { thread_id: params.id, ...query })),
  }),
  route({
    method: 'get',
    path: '/v1/threads/:id/events',
    operationId: 'pollThreadEvents',
    tags: ['threads'],
    summary: 'Long-poll a thread\'s events',
    description:
      'Events with seq above `after_seq`. Answers at once when there are some; otherwise waits up to `wait_ms` for the ' +
      'next one. Loop with `after_seq` = the returned `last_seq`. For clients without WebSockets.',
    auth: 'bearer',
    cors: true,
    // Not counted in flight (it waits without using the database); its reads take a slot each.
    inFlight: false,
    params: idPath,
    query: {
      type: 'object',
      properties: {
        after_seq: { type: 'integer', minimum: 0, maximum: LIMITS.maxSeq, default: 0, description: 'Only events with a seq above this one.' },
        wait_ms: {
          type: 'integer', minimum: 0, maximum: MAX_WAIT_MS, default: 0,
          description: `How long to wait when nothing is new (long-poll), at most ${MAX_WAIT_MS} ms.`,
        },
        limit: { type: 'integer', minimum: 1, maximum: 1000, default: 500, description: 'Most events to return.' },
      },
      additionalProperties: false,
    },
    responses: {
      200: json(resultSchemas.events, 'New events (possibly none, after waiting).'),
      400: refusal('A query parameter is out of range.'),
      404: notFound,
    },
    handler: async ({ principal, params, query, signal }, { services }) =>
      ok(await pollEvents(services, owner(principal), { thread_id: params.id, ...query }, signal)),
  }),
];
