/**
 * Streaming answers through the route table (server/http/sse.ts): a route that answers
 * `text/event-stream` writes its events with backpressure (a client that stops reading stops the
 * producer, which goes on when the client reads again, nothing lost or reordered), learns at once
 * that its client left, and gets the table's parsing of its query like any route. The route here
 * is mounted only in this test, on a uWS app of its own, through the same router as the gateway's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import type { TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js';
import { uws } from '../server/uws.js';
import { mountFallback } from '../server/http/fallback.js';
import { mountRoutes } from '../server/http/router.js';
import { eventStream, route } from '../server/http/route.js';
import { format } from '../server/http/sse.js';
import { sleep, waitFor, within } from './support/wait.js';

/** What the streaming handler did, for the test to watch. */
interface Producer {
  /** Events whose send resolved true. */
  sent: number;
  /** A send is waiting (the socket is not draining). */
  waiting: boolean;
  /** The send that answered false (the client left), if one did. */
  refusedAt?: number;
  aborted: boolean;
  finished: boolean;
}

interface Ctx {
  app: TemplatedApp;
  socket: us_listen_socket;
  port: number;
  producer: Producer;
}

const streamRoute = route<{ producer: () => Producer }>()({
  method: 'get',
  path: '/stream',
  operationId: 'stream',
  tags: ['test'],
  summary: 'Numbered events',
  description: 'count events of size bytes each.',
  auth: 'none',
  query: {
    type: 'object',
    properties: {
      count: { type: 'integer', minimum: 1, maximum: 100_000 },
      size: { type: 'integer', minimum: 1, maximum: 65_536, default: 1 },
    },
    required: ['count'],
    additionalProperties: false,
  },
  responses: { 200: eventStream('Numbered events.', '{"i": n, "pad": "x..."}') },
  handler: async ({ query }, deps) => ({
    status: 200,
    stream: async (sse) => {
      const state = deps.producer();
      sse.signal.addEventListener('abort', () => (state.aborted = true));
      const pad = 'x'.repeat(query.size);
      for (let i = 0; i < query.count; i++) {
        state.waiting = true;
        const written = await sse.send({ id: i, event: 'chunk', data: { i, pad } });
        state.waiting = false;
        if (!written) {
          state.refusedAt = i;
          break;
        }
        state.sent = i + 1;
      }
      state.finished = true;
    },
  }),
});

const test = suite<Ctx>('server-sent events');

test.before(async (ctx) => {
  const uWS = uws();
  ctx.app = uWS.App();
  ctx.producer = fresh();
  const options = { log: pino({ level: 'silent' }), corsOrigin: '*', maxBodyBytes: 1024 };
  const mounted = mountRoutes(ctx.app, [streamRoute], { producer: () => ctx.producer }, options);
  mountFallback(ctx.app, mounted, options);
  ctx.socket = await new Promise<us_listen_socket>((resolve, reject) =>
    ctx.app.listen('127.0.0.1', 0, (socket) => (socket ? resolve(socket) : reject(new Error('listen failed')))),
  );
  ctx.port = uWS.us_socket_local_port(ctx.socket as unknown as us_socket);
});

test.after((ctx) => {
  if (ctx.socket) uws().us_listen_socket_close(ctx.socket);
});

test.before.each((ctx) => {
  ctx.producer = fresh();
});

function fresh(): Producer {
  return { sent: 0, waiting: false, aborted: false, finished: false };
}

/** A GET whose body the test reads when it chooses: the response is paused until `read()`. */
function openStream(port: number, path: string) {
  return new Promise<{ res: http.IncomingMessage; read: () => Promise<string>; req: http.ClientRequest }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.pause();
      resolve({
        res,
        req,
        read: () =>
          new Promise<string>((done, fail) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
            res.on('error', fail);
            res.resume();
          }),
      });
    });
    req.on('error', reject);
  });
}

/** The events of an SSE body: id, event, data (parsed). */
function parse(body: string): Array<{ id?: string; event?: string; data: any }> {
  return body
    .split('\n\n')
    .filter((block) => block.length > 0)
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(': ');
        fields[line.slice(0, colon)] = (fields[line.slice(0, colon)] ? `${fields[line.slice(0, colon)]}\n` : '') + line.slice(colon + 2);
      }
      return { id: fields.id, event: fields.event, data: JSON.parse(fields.data!) };
    });
}

test('events in the SSE wire format, with the stream headers; HEAD has them without a body', async (ctx) => {
  const res = await fetch(`http://127.0.0.1:${ctx.port}/stream?count=3`, { signal: AbortSignal.timeout(5_000) });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'text/event-stream');
  assert.is(res.headers.get('cache-control'), 'no-store');
  assert.is(await res.text(), [0, 1, 2].map((i) => `id: ${i}\nevent: chunk\ndata: {"i":${i},"pad":"x"}\n\n`).join(''));
  const head = await fetch(`http://127.0.0.1:${ctx.port}/stream?count=3`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
  assert.is(head.status, 200);
  assert.is(head.headers.get('content-type'), 'text/event-stream');
  assert.is(await head.text(), '');
  // A string is sent line by line; line breaks cannot end a field early.
  assert.is(format({ data: 'a\nb\r\nc', event: 'x\ny', id: 7 }), 'id: 7\nevent: xy\ndata: a\ndata: b\ndata: c\n\n');
  assert.is(format({ data: '[DONE]' }), 'data: [DONE]\n\n');
});

test('the query is parsed by the table: a bad count is a 400 naming it, before any stream', async (ctx) => {
  for (const query of ['', '?count=abc', '?count=0', '?count=5&size=70000']) {
    const res = await fetch(`http://127.0.0.1:${ctx.port}/stream${query}`, { signal: AbortSignal.timeout(5_000) });
    assert.is(res.status, 400, query);
    const body = await res.json();
    assert.is(body.code, 'invalid_request');
    assert.match(body.message, query.includes('size') ? /^query\.size must be a whole number from 1 to 65536$/ : /^query\.count (is required|must be a whole number from 1 to 100000)/);
  }
  assert.is(ctx.producer.sent, 0, 'no stream was started');
});

test('a client that stops reading stops the producer; reading again finishes the stream with every event in order', async (ctx) => {
  const count = 2_000;
  const size = 16_384;
  const stream = await openStream(ctx.port, `/stream?count=${count}&size=${size}`);
  assert.is(stream.res.headers['content-type'], 'text/event-stream');
  await waitFor(() => ctx.producer.waiting && ctx.producer.sent > 0, 10_000, () => `a send held back (sent ${ctx.producer.sent})`);
  const held = ctx.producer.sent;
  // 32 MB were asked for; what was written before the producer had to wait is what the socket buffers hold.
  assert.ok(held < count / 2, `the producer waited after ${held} of ${count} events`);
  // A window in which nothing may happen: the client still reads nothing, so nothing more is sent.
  await sleep(300);
  assert.is(ctx.producer.sent, held, 'no event is produced while the client does not read');
  assert.not.ok(ctx.producer.finished);
  const events = parse(await within(stream.read(), 30_000, 'the whole stream'));
  assert.is(events.length, count);
  events.forEach((event, i) => {
    assert.is(event.id, String(i));
    assert.is(event.data.i, i);
    assert.is(event.data.pad.length, size);
  });
  assert.ok(ctx.producer.finished);
  assert.is(ctx.producer.refusedAt, undefined);
  assert.not.ok(ctx.producer.aborted);
});

test('a client that leaves mid-stream: the waiting send answers false, the signal aborts, the handler ends', async (ctx) => {
  const stream = await openStream(ctx.port, '/stream?count=100000&size=16384');
  await waitFor(() => ctx.producer.waiting && ctx.producer.sent > 0, 10_000, 'a send held back');
  stream.req.destroy();
  await waitFor(() => ctx.producer.finished, 5_000, 'the handler to end');
  assert.ok(ctx.producer.aborted, 'the signal aborted');
  assert.is(ctx.producer.refusedAt, ctx.producer.sent, 'the send after the last written one answered false');
  assert.ok(ctx.producer.sent < 100_000);
});

test.run();
