/**
 * Large request heads, written on a raw TCP socket the way a real network delivers them: in one
 * read, or in two or three with pauses between. A browser's upgrade request with cookies and a
 * `bearer.<jwt>` subprotocol can pass 4 KB; the gateway reads a head of up to 16 KB in any number
 * of reads (server/uws.ts sets UWS_HTTP_MAX_HEADERS_SIZE before uWS loads; nothing here loads uWS
 * any other way) and answers a longer one with 431 instead of closing without a word.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PROTOCOL } from '../protocol/codes.js';
import { DEFAULT_MAX_HEAD_BYTES } from '../server/uws.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { sleep, waitFor } from './support/wait.js';

const test = suite<StackCtx>('request heads');
useStack(test);

/**
 * One raw connection: what the server wrote, and whether it closed. The pause between writes is
 * the thing under test (a head in several reads), not a wait for an event: with Nagle off, each
 * write leaves as its own segment and the gateway reads it before the next one arrives.
 */
class Raw {
  private received = Buffer.alloc(0);
  closed = false;
  private readonly socket: net.Socket;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk) => (this.received = Buffer.concat([this.received, chunk])));
    this.socket.on('close', () => (this.closed = true));
    // A reset after the server closed is a close like any other here.
    this.socket.on('error', () => {});
  }

  /** Writes `head` in `parts` writes, 60 ms apart; stops early if the server closes (head() then says so). */
  async write(head: string, parts: number): Promise<void> {
    const bytes = Buffer.from(head);
    const size = Math.ceil(bytes.length / parts);
    for (let i = 0; i < parts && !this.closed; i++) {
      if (i > 0) await sleep(60); // the pace is the point: each part reaches the server in a read of its own
      await new Promise<void>((resolve) => this.socket.write(bytes.subarray(i * size, (i + 1) * size), () => resolve()));
    }
  }

  /** The response so far: its status, head (status line and headers) and what followed; undefined until the head is complete. */
  response(): { status: number; headers: string; body: Buffer } | undefined {
    const end = this.received.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const headers = this.received.subarray(0, end).toString();
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1]), headers, body: this.received.subarray(end + 4) };
  }

  /** The response head, once it is complete; fails if the socket closes first. */
  async head(): Promise<{ status: number; headers: string; body: Buffer }> {
    await waitFor(() => this.response() !== undefined || this.closed, 5_000, 'a response head');
    const response = this.response();
    assert.ok(response, `the server closed the connection without a response (${this.received.length} bytes)`);
    return response;
  }

  /** The server's WebSocket text frames after the 101, parsed (server frames are not masked). */
  frames(): Array<Record<string, any>> {
    let rest = this.response()?.body ?? Buffer.alloc(0);
    const out: Array<Record<string, any>> = [];
    while (rest.length >= 2) {
      let length = rest[1]! & 0x7f;
      let offset = 2;
      if (length === 126) [length, offset] = [rest.readUInt16BE(2), 4];
      else if (length === 127) [length, offset] = [Number(rest.readBigUInt64BE(2)), 10];
      if (rest.length < offset + length) break;
      if ((rest[0]! & 0x0f) === 1) out.push(JSON.parse(rest.subarray(offset, offset + length).toString()));
      rest = rest.subarray(offset + length);
    }
    return out;
  }

  /** One masked text frame, as a client must send it. */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    const mask = randomBytes(4);
    const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A request head of exactly `bytes` bytes: the request line and headers, then a Cookie header
 * (many cookies, as a browser sends them) padded to the size.
 */
function requestHead(bytes: number, lines: string[]): string {
  const start = `${lines.join('\r\n')}\r\nCookie: `;
  const end = '\r\n\r\n';
  let cookies = '';
  for (let i = 0; cookies.length < bytes - start.length - end.length; i++) cookies += `${i ? '; ' : ''}c${i}=${randomBytes(90).toString('base64url')}`;
  const head = `${start}${cookies.slice(0, bytes - start.length - end.length)}${end}`;
  assert.is(Buffer.byteLength(head), bytes);
  return head;
}

function upgradeHead(bytes: number, port: number, auth: string[]): string {
  return requestHead(bytes, [
    'GET /v1/ws HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    'Origin: http://127.0.0.1',
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    ...auth,
  ]);
}

test('the gateway reads its head limit from server/uws.ts: 16 KB', () => {
  assert.is(process.env.UWS_HTTP_MAX_HEADERS_SIZE, String(DEFAULT_MAX_HEAD_BYTES));
  assert.is(DEFAULT_MAX_HEAD_BYTES, 16_384);
});

const heads = [
  { label: '6.3 KB', bytes: 6_450, splits: [1, 2] },
  { label: '15.5 KB', bytes: 15_872, splits: [1, 3] },
  { label: '16 KB (the limit, to the byte)', bytes: 16_384, splits: [3] },
];
const vias = ['an Authorization header', 'the bearer subprotocol'] as const;

for (const { label, bytes, splits } of heads) {
  for (const via of vias) {
    for (const parts of splits) {
      test(`a ${label} upgrade request with the token in ${via}, written in ${parts} part(s): 101, session.ready, and the socket answers a ping`, async (ctx) => {
        const port = ctx.node.gateway!.port;
        const token = await ctx.stack.token(`heads-${bytes}-${parts}`);
        const auth = via === 'an Authorization header'
          ? [`Authorization: Bearer ${token}`, `Sec-WebSocket-Protocol: ${PROTOCOL}`]
          : [`Sec-WebSocket-Protocol: ${PROTOCOL}, bearer.${token}`];
        const raw = new Raw(port);
        try {
          await raw.write(upgradeHead(bytes, port, auth), parts);
          const answer = await raw.head();
          assert.is(answer.status, 101, answer.headers);
          assert.match(answer.headers, new RegExp(`\r\nsec-websocket-protocol: ${PROTOCOL}(\r|$)`, 'i'), 'chat.v1 answered, never the token');
          await waitFor(() => raw.frames().length >= 1, 5_000, 'the first frame');
          const ready = raw.frames()[0]!;
          assert.is(ready.type, 'session.ready');
          assert.is(ready.payload.user_id, `heads-${bytes}-${parts}`);
          raw.sendText(JSON.stringify({ type: 'ping', id: 'p1', payload: {} }));
          await waitFor(() => raw.frames().some((f) => f.type === 'pong' && f.id === 'p1') || raw.closed, 5_000, 'the pong');
          assert.ok(raw.frames().some((f) => f.type === 'pong'), 'the socket speaks WebSocket');
        } finally {
          raw.close();
        }
      });
    }
  }
}

for (const [label, bytes, parts] of [['16 KB and one byte', 16_385, 3], ['20 KB', 20_480, 3], ['20 KB', 20_480, 1]] as const) {
  test(`a ${label} upgrade request in ${parts} read(s) is answered 431, not closed without a word`, async (ctx) => {
    const port = ctx.node.gateway!.port;
    const token = await ctx.stack.token('heads-too-large');
    const raw = new Raw(port);
    try {
      await raw.write(upgradeHead(bytes, port, [`Sec-WebSocket-Protocol: ${PROTOCOL}, bearer.${token}`]), parts);
      const answer = await raw.head();
      assert.is(answer.status, 431, answer.headers);
      assert.match(answer.headers, /^HTTP\/1\.1 431 Request Header Fields Too Large/);
      await waitFor(() => raw.closed, 5_000, 'the server to close');
      assert.not.ok(raw.response()!.body.includes(token), 'the token is not echoed');
    } finally {
      raw.close();
    }
  });
}

test('a REST GET with a 15 KB head in three reads is answered', async (ctx) => {
  const port = ctx.node.gateway!.port;
  const token = await ctx.stack.token('heads-rest');
  const raw = new Raw(port);
  try {
    const head = requestHead(15_360, [
      'GET /v1/threads?limit=5 HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Accept: application/json',
      `Authorization: Bearer ${token}`,
    ]);
    await raw.write(head, 3);
    const answer = await raw.head();
    assert.is(answer.status, 200, answer.headers);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(answer.headers)?.[1]);
    await waitFor(() => raw.response()!.body.length >= length || raw.closed, 5_000, 'the body');
    const body = JSON.parse(raw.response()!.body.toString());
    assert.equal(body.threads, []);
  } finally {
    raw.close();
  }
});

test.run();
