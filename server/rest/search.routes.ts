/** Search: the REST mirror of the `search` frame. */
import { requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { searchMessages } from '../operations/search.js';
import { NOT_BLANK } from '../http/params.js';
import { json, ok, refusal } from '../http/route.js';
import { owner, route } from './deps.js';

const search = requestSchemas.search.properties;

export const searchRoutes = [
  route({
    method: 'get',
    path: '/v1/search',
    operationId: 'searchMessages',
    tags: ['search'],
    summary: 'Search your messages',
    description:
      'Full-text search over the caller\'s own user and assistant messages, best match first, with a highlighted ' +
      'snippet (`<mark>`). `q` uses web-search syntax: words, "quoted phrases", -not, or.',
    auth: 'bearer',
    cors: true,
    query: {
      type: 'object',
      properties: {
        // The frame's q, and not blank: a query string of spaces finds nothing.
        q: { ...search.q, pattern: NOT_BLANK, description: 'The words to search for (1 to 500 characters, not all blank).' },
        limit: { ...search.limit, default: 20, description: 'Most results to return.' },
      },
      required: ['q'],
      additionalProperties: false,
    },
    responses: {
      200: json(resultSchemas.search, 'Matches, best first.'),
      400: refusal('`q` is missing, blank or too long, or `limit` is out of range.'),
    },
    handler: async ({ principal, query }, { services }) =>
      ok(await searchMessages(services, owner(principal), { q: query.q.trim(), limit: query.limit })),
  }),
];
