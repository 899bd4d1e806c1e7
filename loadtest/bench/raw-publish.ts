/**
 * The raw publish: uWebSockets.js alone delivering a run's frames, the floor of the fan-out's
 * cost (loadtest/bench/raw-publish-run.ts drives it). A socket names its topic in its first text
 * frame and is subscribed to it; then, told over IPC, this process publishes the frames it is
 * given to their topics at the times given (the times the server stored them, so the raw publish
 * sees the same bursts), one `app.publish` each, and nothing else: no broker, no parsing, no
 * metrics, no slow-consumer check.
 *
 * IPC in: `{ type: 'replay', frames: [atMs, topic, frame][] }` (sorted by atMs), `{ type: 'cpu' }`.
 * IPC out: `{ type: 'ready', port }`, `{ type: 'subscribed', sockets }` for each 1,000 sockets,
 * `{ type: 'replayed' }` once the last frame is published, `{ type: 'cpu', userUs, systemUs }`.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';

export type ToRawPublish = { type: 'replay'; frames: Array<[number, string, string]> } | { type: 'cpu' };
export type FromRawPublish =
  | { type: 'ready'; port: number }
  | { type: 'replayed' }
  | { type: 'cpu'; userUs: number; systemUs: number }
  | { type: 'failed'; error: string };

const uWS = createRequire(import.meta.url)('uWebSockets.js') as typeof Uws;
const tell = (message: FromRawPublish) => process.send!(message);

const app = uWS.App();
app.ws<{ topic?: string }>('/*', {
  maxPayloadLength: 4 * 1024,
  idleTimeout: 0,
  // Nothing is dropped for a slow reader: the clients count every frame.
  maxBackpressure: 64 * 1024 * 1024,
  message(ws, data) {
    const topic = Buffer.from(data).toString();
    ws.getUserData().topic = topic;
    ws.subscribe(topic);
    ws.send('ok');
  },
});

/** Publishes every frame at its time (ms from now): frames due together go out in one pass. */
function replay(frames: Array<[number, string, string]>): void {
  const start = performance.now();
  let next = 0;
  const step = () => {
    const now = performance.now() - start;
    while (next < frames.length && frames[next]![0] <= now) {
      const [, topic, frame] = frames[next++]!;
      app.publish(topic, frame, false);
    }
    if (next < frames.length) setTimeout(step, Math.max(0, frames[next]![0] - (performance.now() - start)));
    else tell({ type: 'replayed' });
  };
  step();
}

process.on('message', (message: ToRawPublish) => {
  if (message.type === 'replay') replay(message.frames);
  else if (message.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    tell({ type: 'cpu', userUs: user, systemUs: system });
  }
});
process.on('SIGTERM', () => process.exit(0));

app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) {
    tell({ type: 'failed', error: 'cannot listen on 127.0.0.1' });
    process.exit(1);
  }
  tell({ type: 'ready', port: uWS.us_socket_local_port(socket as unknown as Uws.us_socket) });
});
