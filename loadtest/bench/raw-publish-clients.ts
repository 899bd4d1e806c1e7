/**
 * The raw publish's sockets (loadtest/bench/raw-publish.ts): a process of their own, as the
 * driver is for the server. Each socket names its topic and counts the frames it gets; the
 * process says when every socket is subscribed, and when every one has all the frames it expects.
 *
 * IPC in: `{ type: 'open', url, topics: [topic, sockets, frames][] }`.
 * IPC out: `{ type: 'ready' }` at start, `{ type: 'subscribed', sockets }`, `{ type: 'received', frames }` (all of them),
 * `{ type: 'failed', error }`.
 */
import WebSocket from 'ws';

export type ToRawClients = { type: 'open'; url: string; topics: Array<[string, number, number]>; deadlineMs: number };
export type FromRawClients = { type: 'ready' } | { type: 'subscribed'; sockets: number } | { type: 'received'; frames: number } | { type: 'failed'; error: string };

const tell = (message: FromRawClients) => process.send!(message);

function open(url: string, topic: string, expected: number, onAll: () => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let got = -1; // the first frame is the server's `ok`
    ws.on('open', () => ws.send(topic));
    ws.on('message', () => {
      if (++got === 0) resolve(ws);
      else if (got === expected) onAll();
    });
    ws.on('error', reject);
  });
}

async function run(message: ToRawClients): Promise<void> {
  const jobs = message.topics.flatMap(([topic, sockets, frames]) => Array.from({ length: sockets }, () => ({ topic, frames })));
  const total = jobs.reduce((sum, job) => sum + job.frames, 0);
  let complete = 0;
  let frames = 0;
  const onAll = (count: number) => () => {
    frames += count;
    if (++complete === jobs.length) tell({ type: 'received', frames });
  };
  const sockets: WebSocket[] = [];
  let next = 0;
  // 200 at a time: a connect burst larger than the listen backlog only measures SYN retries.
  await Promise.all(Array.from({ length: Math.min(200, jobs.length) }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      sockets.push(await open(message.url, job.topic, job.frames, onAll(job.frames)));
    }
  }));
  tell({ type: 'subscribed', sockets: sockets.length });
  if (total === 0) tell({ type: 'received', frames: 0 });
  setTimeout(() => {
    tell({ type: 'failed', error: `${jobs.length - complete} sockets short of their frames after ${message.deadlineMs} ms` });
  }, message.deadlineMs).unref();
}

process.on('message', (message: ToRawClients) => {
  run(message).catch((error: unknown) => tell({ type: 'failed', error: String((error as Error)?.stack ?? error) }));
});
process.on('SIGTERM', () => process.exit(0));
tell({ type: 'ready' });
