/**
 * A hostile client, run as its own process (`node --import tsx test/support/frame-flooder.ts`) so
 * that its work shares neither the gateway's event loop nor the test's: FLOOD_SOCKETS sockets of
 * one user send malformed and expensive frames at FLOOD_RATE frames a second in all, and each
 * socket that is closed or refused connects again at once. Prints `flooding` once the first socket
 * is open, and after FLOOD_MS one line `result {json}` with what it sent and what it was told.
 *
 *   FLOOD_URL, FLOOD_TOKEN, FLOOD_SOCKETS (30), FLOOD_RATE (4700), FLOOD_MS (10000)
 */
import WebSocket from 'ws';

const url = process.env.FLOOD_URL!;
const token = process.env.FLOOD_TOKEN!;
const sockets = Number(process.env.FLOOD_SOCKETS ?? 30);
const rate = Number(process.env.FLOOD_RATE ?? 4700);
const durationMs = Number(process.env.FLOOD_MS ?? 10_000);

/** `{"type":"ping","id":…,"payload":{…4,000 keys…}}`: about 50 KB, about 1.7 ms to parse and judge in full. */
const wide = (() => {
  const keys = Array.from({ length: 4000 }, (_, i) => `"key${String(i).padStart(4, '0')}":${i % 10}`).join(',');
  return `{"type":"ping","id":"wide","payload":{${keys}}}`;
})();
interface Shape {
  kind: string;
  data: Buffer;
  binary: boolean;
}
const shape = (kind: string, text: string, binary = false): Shape => ({ kind, data: Buffer.from(text), binary });
/** Four in ten frames are the wide one; the rest are cheap pings and other bad frames. */
const MIX: Shape[] = [
  shape('wide', wide),
  shape('ping', '{"type":"ping","id":"p","payload":{}}'),
  shape('wide', wide),
  shape('not-json', '{"type":"ping", this is not JSON'),
  shape('wide', wide),
  shape('ping', '{"type":"ping","id":"p","payload":{}}'),
  shape('deep', `{"type":"ping","id":"d","payload":{"x":${'['.repeat(40)}${']'.repeat(40)}}}`),
  shape('wide', wide),
  shape('unknown-type', '{"type":"thread.explode","id":"u","payload":{"a":1,"b":2}}'),
  shape('binary', 'binary frame', true),
];

const stats = {
  wideBytes: Buffer.byteLength(wide),
  sent: {} as Record<string, number>,
  opened: 0,
  /** Handshakes answered with an HTTP status instead of an upgrade, by status. */
  refused: {} as Record<string, number>,
  closes: {} as Record<string, number>,
  /** Error frames received, by code. */
  errors: {} as Record<string, number>,
  /** The messages of the invalid_frame errors received, with how often each came. */
  invalid: {} as Record<string, number>,
};
const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

interface Slot {
  ws?: WebSocket;
  open: boolean;
  credit: number;
  next: number;
}
const slots: Slot[] = Array.from({ length: sockets }, (_, i) => ({ open: false, credit: 0, next: i }));
let stopped = false;
let announced = false;

function connect(slot: Slot): void {
  if (stopped) return;
  // A zero mask: ws then skips masking 50 KB per frame, which would cost this process, not the gateway.
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, generateMask: (mask) => mask.fill(0) });
  slot.ws = ws;
  slot.open = false;
  slot.credit = 0;
  ws.on('open', () => {
    slot.open = true;
    stats.opened++;
    if (!announced) {
      announced = true;
      process.stdout.write('flooding\n');
    }
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const frame = JSON.parse(data.toString()) as { type: string; id?: string; payload: { code?: string; message?: string } };
    if (frame.type !== 'error') return;
    bump(stats.errors, frame.payload.code ?? '?');
    if (frame.payload.code === 'invalid_frame') bump(stats.invalid, frame.payload.message ?? '');
  });
  let refused = false;
  ws.on('error', (error) => {
    const status = /Unexpected server response: (\d+)/.exec(error.message)?.[1];
    if (status) bump(stats.refused, status);
    refused = status !== undefined;
  });
  ws.on('close', (code) => {
    slot.open = false;
    if (slot.ws !== ws) return;
    if (!refused) bump(stats.closes, String(code));
    // At once, as a hostile client would.
    setImmediate(() => connect(slot));
  });
}

const perSocket = rate / sockets;
let last = performance.now();
const pump = setInterval(() => {
  const now = performance.now();
  const elapsed = (now - last) / 1000;
  last = now;
  for (const slot of slots) {
    if (!slot.open || !slot.ws) continue;
    // At most 50 ms of frames at once: a socket that just opened does not get a backlog.
    slot.credit = Math.min(slot.credit + perSocket * elapsed, perSocket * 0.05 + 1);
    while (slot.credit >= 1 && slot.ws.bufferedAmount < 1024 * 1024) {
      const frame = MIX[slot.next++ % MIX.length]!;
      slot.ws.send(frame.data, { binary: frame.binary });
      bump(stats.sent, frame.kind);
      slot.credit--;
    }
  }
}, 5);

for (const slot of slots) connect(slot);

setTimeout(() => {
  stopped = true;
  clearInterval(pump);
  for (const slot of slots) slot.ws?.terminate();
  process.stdout.write(`result ${JSON.stringify(stats)}\n`);
  process.exit(0);
}, durationMs);
