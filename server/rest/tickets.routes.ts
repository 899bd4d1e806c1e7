/** Connection tickets: a single-use stand-in for the token in the socket's URL. */
import { resultSchemas } from '../../protocol/resources.js';
import { TICKET_TTL_MS } from '../tickets/index.js';
import { json, ok } from '../http/route.js';
import { route } from './deps.js';

export const ticketRoutes = [
  route({
    method: 'post',
    path: '/v1/ws-ticket',
    operationId: 'createWsTicket',
    tags: ['connect'],
    summary: 'Get a connection ticket',
    description:
      'Trades the bearer token for an opaque ticket, valid for 30 seconds and usable once: open the socket with ' +
      '`/v1/ws?ticket=<ticket>` so a long-lived JWT never goes into a URL. The connection keeps the token\'s expiry. No body.',
    auth: 'bearer',
    cors: true,
    responses: { 201: json(resultSchemas.ticket, 'The ticket and when it expires.') },
    handler: async ({ principal }, { services }) => {
      const ticket = await services.tickets.issue(principal, TICKET_TTL_MS);
      return ok({ ticket, expires_at: new Date(Date.now() + TICKET_TTL_MS).toISOString() }, 201);
    },
  }),
];
