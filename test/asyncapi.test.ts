/**
 * The published WebSocket protocol: GET /v1/asyncapi.json is a valid AsyncAPI 3 document by
 * @asyncapi/parser; it lists every client frame, server frame and thread event the gateway's
 * schemas know, and every error and close code; each schema in it is served alone at
 * GET /v1/schemas/{name}.json with its own $id; and the frames a real node sends and accepts
 * during a turn validate against the published schemas (fetched over HTTP, compiled by a fresh
 * ajv), so the documents say what the server does.
 */
import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import AjvModule, { type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Parser } from '@asyncapi/parser';
import { CloseCodes, ErrorCodes, RunErrorCodes } from '../protocol/codes.js';
import { ackResultSchemas, clientPayloadSchemas, eventPayloadSchemas, serverPayloadSchemas } from '../protocol/schemas.js';
import { signToken } from '../server/auth.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';

const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

type Json = any;

interface Ctx extends StackCtx {
  doc: Json;
}

const test = suite<Ctx>('asyncapi');
useStack(test, {
  backend: 'redis',
  setup: async (ctx) => {
    // The Host a client used names the server in the document (fetch cannot set Host).
    ctx.doc = await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: ctx.node.gateway!.port, path: '/v1/asyncapi.json', headers: { host: 'chat.example.com:8443' } }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    });
  },
});

test('a valid AsyncAPI 3 document by @asyncapi/parser, which reports a broken one', async ({ doc }) => {
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(JSON.stringify(doc));
  assert.ok(document, 'parsed');
  assert.equal(diagnostics.map((d) => `${d.severity} ${d.code} ${d.message} ${d.path.join('.')}`), []);
  const broken = structuredClone(doc);
  broken.operations['receive.message.send'].action = 'publish';
  const again = await parser.parse(JSON.stringify(broken));
  assert.ok(again.diagnostics.some((d) => d.severity === 0), 'the parser checks the document');
  assert.is(doc.servers.gateway.host, 'chat.example.com:8443', 'the host the document was asked for');
  assert.is(doc.servers.gateway.pathname, '/v1/ws');
});

test('every frame, event, ack and code the gateway knows is in it', ({ doc }) => {
  const operations = doc.operations;
  for (const type of Object.keys(clientPayloadSchemas)) {
    const op = operations[`receive.${type}`];
    assert.ok(op, `client frame ${type}`);
    assert.is(op.action, 'receive');
    const reply = op.reply.messages.map((m: Json) => m.$ref);
    assert.ok(reply.includes('#/channels/socket/messages/server.error'), `${type} may be answered by an error`);
    if (type in ackResultSchemas) assert.ok(reply.includes(`#/channels/socket/messages/ack.${type}`), `${type} is answered by its own ack`);
  }
  for (const type of Object.keys(serverPayloadSchemas)) assert.is(operations[`send.${type}`]?.action, 'send', `server frame ${type}`);
  for (const type of Object.keys(eventPayloadSchemas)) assert.match(doc.components.schemas[`server.${type}`].description, /thread event/);
  const consts = (name: string) => doc.components.schemas[name].anyOf.map((entry: Json) => entry.const);
  assert.equal(consts('error-codes'), Object.keys(ErrorCodes));
  assert.equal(consts('run-error-codes'), Object.keys(RunErrorCodes));
  assert.equal(consts('close-codes'), Object.values(CloseCodes));
  for (const entry of doc.components.schemas['close-codes'].anyOf) assert.ok(entry.description.length > 20, `close code ${entry.const} says what to do`);
});

test('each schema is served alone with its $id, and they compile', async ({ doc, base }) => {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true });
  addFormats(ajv, ['date-time']);
  const ids = new Set<string>();
  for (const [name, schema] of Object.entries<Json>(doc.components.schemas)) {
    const res = await fetch(`${base}/v1/schemas/${name}.json`);
    assert.is(res.status, 200, name);
    assert.equal(await res.json(), schema, `${name} served as in the document`);
    assert.type(schema.$id, 'string');
    assert.not.ok(ids.has(schema.$id), `${name}: its $id is its own`);
    ids.add(schema.$id);
    ajv.addSchema(schema);
  }
  for (const id of ids) assert.type(ajv.getSchema(id), 'function', id);
});

test('a real turn: what the client sends and every frame the server sends validate against the published schemas', async (ctx) => {
  const ajv = new Ajv({ strict: false, allowUnionTypes: true });
  addFormats(ajv, ['date-time']);
  const schemas = new Map<string, ValidateFunction>();
  const schema = async (name: string) => {
    if (!schemas.has(name)) {
      const res = await fetch(`${ctx.base}/v1/schemas/${name}.json`);
      assert.is(res.status, 200, name);
      schemas.set(name, ajv.compile(await res.json()));
    }
    return schemas.get(name)!;
  };
  const expectValid = async (name: string, frame: unknown) => {
    const validate = await schema(name);
    assert.ok(validate(frame), `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(frame).slice(0, 300)}`);
  };

  const client = await connect(ctx, 'published');
  const sent = { type: 'message.send', id: 'm1', payload: { content: 'Published? [[words:12]] [[tool:calculator {"expression":"6*7"}]]' } };
  await expectValid('client.message.send', sent);
  client.send(sent);
  const ack = await client.next((f) => f.id === 'm1' && f.type === 'ack');
  await expectValid('ack.message.send', ack);
  await client.completed(ack.payload.run_id, 20_000);
  const refused = await client.request('thread.get', { thread_id: 't_missing' });
  assert.is(refused.type, 'error');
  const list = await client.request('thread.list', { limit: 2 });
  await expectValid('ack.thread.list', list);

  const types = new Set<string>();
  for (const frame of client.frames) {
    types.add(frame.type);
    await expectValid(`server.${frame.type}`, frame);
  }
  for (const type of ['session.ready', 'ack', 'error', 'message_created', 'agent_started', 'agent_thinking', 'message_delta', 'tool_executing', 'tool_completed', 'agent_completed']) {
    assert.ok(types.has(type), `the turn had a ${type} frame`);
  }
  // A turn that waits for an approval: the request, the answer and the decision.
  const admin = await signToken(ctx.stack.secret, { sub: 'boss', workspace: 'acme', ttlSeconds: 600, extra: { role: 'admin' } });
  const agent = await fetch(`${ctx.base}/v1/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Guarded', tools: ['calculator'], require_approval: ['calculator'] }),
  }).then((res) => res.json() as Promise<{ id: string }>);
  const guarded = await client.request('message.send', { content: 'calculate 6*7 please', agent_id: agent.id });
  const requested = await client.next((f) => f.type === 'approval_requested' && f.payload.run_id === guarded.payload.run_id, 20_000);
  const approve = { type: 'tool.approve', id: 'a1', payload: { run_id: guarded.payload.run_id, tool_call_id: requested.payload.tool_call_id, approved: true } };
  await expectValid('client.tool.approve', approve);
  client.send(approve);
  await expectValid('ack.tool.approve', await client.next((f) => f.id === 'a1' && f.type === 'ack'));
  await client.completed(guarded.payload.run_id, 20_000);
  for (const frame of client.frames.filter((f) => f.type.startsWith('approval_'))) await expectValid(`server.${frame.type}`, frame);
  assert.equal(client.frames.filter((f) => f.type.startsWith('approval_')).map((f) => f.type), ['approval_requested', 'approval_resolved']);
  const unanswerable = await schema('client.tool.approve');
  assert.not.ok(unanswerable({ type: 'tool.approve', payload: { run_id: 'r1', tool_call_id: 'c1' } }), 'approved is required');

  // A frame the server would refuse is refused by the published schema too.
  const wrong = await schema('client.message.send');
  assert.not.ok(wrong({ type: 'message.send', payload: { content: '' } }));
  assert.not.ok(wrong({ type: 'message.send', payload: { content: 'hi', colour: 'red' } }));
});

test.run();
