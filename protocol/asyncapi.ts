/**
 * The AsyncAPI 3 document of the WebSocket protocol, generated from the published schemas
 * (./published.ts): one channel, `/v1/ws`; an operation per client frame the gateway receives
 * (with its reply: the matching `ack`, or `error`) and per server frame and thread event it sends.
 */
import { PROTOCOL } from './codes.js';
import { publishedSchemas, schemaId } from './published.js';
import { AGUI_SUBPROTOCOL } from './agui.js';

export interface AsyncApiInfo {
  title: string;
  version: string;
  description: string;
  /** host[:port] clients connect to (the Host a request for the document named). */
  host: string;
}

const CHANNEL = { $ref: '#/channels/socket' };
const messageRef = (key: string) => ({ $ref: `#/channels/socket/messages/${key}` });

export function buildAsyncApi(info: AsyncApiInfo): object {
  const schemas: Record<string, object> = {};
  const messages: Record<string, object> = {};
  const operations: Record<string, object> = {};
  const entries = publishedSchemas();

  for (const entry of entries) {
    schemas[entry.name] = entry.schema;
    if (entry.kind === 'codes') continue;
    messages[entry.name] = {
      name: entry.frameType,
      title: entry.schema.title,
      summary: entry.schema.description,
      contentType: 'application/json',
      payload: { $ref: `#/components/schemas/${entry.name}` },
    };
  }
  const acks = new Set(entries.filter((entry) => entry.kind === 'ack').map((entry) => entry.frameType));
  for (const entry of entries) {
    if (entry.kind === 'client') {
      const type = entry.frameType!;
      operations[`receive.${type}`] = {
        action: 'receive',
        channel: CHANNEL,
        summary: `The client sends \`${type}\`.`,
        messages: [messageRef(entry.name)],
        reply: {
          channel: CHANNEL,
          messages: [messageRef(acks.has(type) ? `ack.${type}` : 'server.ack'), messageRef('server.error')],
        },
      };
    } else if (entry.kind === 'agui-client') {
      operations[`receive.${entry.name}`] = {
        action: 'receive',
        channel: CHANNEL,
        summary: `On an ${AGUI_SUBPROTOCOL} socket, the client sends \`${entry.frameType}\`; the server answers with AG-UI events (or an \`error\`).`,
        messages: [messageRef(entry.name)],
        reply: { channel: CHANNEL, messages: [messageRef('agui.server.event'), messageRef('server.error')] },
      };
    } else if (entry.kind === 'agui-server') {
      operations['send.agui.event'] = {
        action: 'send',
        channel: CHANNEL,
        summary: `On an ${AGUI_SUBPROTOCOL} socket, the server sends AG-UI events, one per frame.`,
        messages: [messageRef(entry.name)],
      };
    } else if (entry.kind === 'server') {
      operations[`send.${entry.frameType}`] = {
        action: 'send',
        channel: CHANNEL,
        summary: `The server sends \`${entry.frameType}\`.`,
        messages: [messageRef(entry.name)],
      };
    }
  }

  return {
    asyncapi: '3.1.0',
    id: schemaId('asyncapi'),
    info: { title: info.title, version: info.version, description: info.description },
    defaultContentType: 'application/json',
    servers: {
      gateway: {
        host: info.host,
        pathname: '/v1/ws',
        protocol: 'ws',
        description: 'This gateway (wss behind TLS). The token goes in Authorization, a bearer.<jwt> subprotocol, ?access_token= or a ?ticket=.',
        security: [{ $ref: '#/components/securitySchemes/bearer' }, { $ref: '#/components/securitySchemes/accessToken' }],
      },
    },
    channels: {
      socket: {
        address: '/v1/ws',
        title: `The socket (subprotocol ${PROTOCOL}, or ${AGUI_SUBPROTOCOL})`,
        description:
          `With ${PROTOCOL}, every frame is a JSON text frame \`{type, id?, payload}\`. After the upgrade the server sends \`session.ready\`. ` +
          'A client request carries an `id`, echoed on its `ack` or `error`. Close codes: components.schemas.close-codes. ' +
          `With ${AGUI_SUBPROTOCOL}, the client sends \`agui.run\` and \`agui.connect\` and the server sends AG-UI events (agui.* messages).`,
        messages: Object.fromEntries(Object.keys(messages).map((key) => [key, { $ref: `#/components/messages/${key}` }])),
        bindings: {
          ws: {
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                access_token: { type: 'string', description: 'The JWT, when no header can be set.' },
                ticket: { type: 'string', description: 'A single-use ticket from POST /v1/ws-ticket.' },
              },
            },
          },
        },
      },
    },
    operations,
    components: {
      schemas,
      messages,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Authorization: Bearer <jwt>, or a bearer.<jwt> entry of Sec-WebSocket-Protocol.' },
        accessToken: { type: 'httpApiKey', name: 'access_token', in: 'query', description: 'The JWT as ?access_token= (or a ?ticket=).' },
      },
    },
  };
}
