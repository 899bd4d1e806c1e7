/**
 * The fan-out's floor beside a streaming run: the frames the run's sockets got (the stored events
 * of the run's threads, as the server sends them), published with bare uWebSockets.js topics to
 * as many sockets per thread, at the times the server stored them (loadtest/bench/raw-publish.ts,
 * its clients in a process of their own). The report puts the server's CPU per delivered event
 * (one frame on one socket) beside this process's.
 */
import pg from 'pg';
import type { FromRawPublish, ToRawPublish } from './raw-publish.js';
import type { FromRawClients, ToRawClients } from './raw-publish-clients.js';
import { nodeFlags, startRawPart, type Proc } from './processes.js';

export interface RawPublishFigures {
  /** Frames published (the run's events) and frames delivered (each frame to each socket of its thread). */
  frames: number;
  delivered: number;
  sockets: number;
  /** From the first publish until every socket had every frame. */
  seconds: number;
  /** The uWS process's CPU over those seconds, per delivered frame. */
  cpu_ms: number;
  us_per_delivered: number;
}

/** The stored events of the run's threads (their owners are `bench-user-*`), in the order they were stored. */
async function runFrames(databaseUrl: string): Promise<Array<{ thread: string; at: number; frame: string }>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ thread_id: string; type: string; payload: { timestamp: string } }>(
      `select e.thread_id, e.type, e.payload from events e join threads t on t.id = e.thread_id
       where t.user_id like 'bench-user-%' order by (e.payload->>'timestamp')::timestamptz, e.thread_id, e.seq`,
    );
    // The frame as the server sends it (db/events.repository.ts toFrame).
    return rows.map((row) => ({ thread: row.thread_id, at: Date.parse(row.payload.timestamp), frame: JSON.stringify({ type: row.type, payload: row.payload }) }));
  } finally {
    await client.end();
  }
}

function next<T extends { type: string }>(proc: Proc, type: T['type'], deadlineMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${proc.name}: no ${type} within ${deadlineMs} ms`)), deadlineMs);
    const listener = (message: T | { type: 'failed'; error: string }) => {
      if (message.type !== type && message.type !== 'failed') return;
      clearTimeout(timer);
      proc.child.off('message', listener);
      if (message.type === 'failed') reject(new Error(`${proc.name}: ${(message as { error: string }).error}`));
      else resolve(message as T);
    };
    proc.child.on('message', listener);
  });
}

export async function runRawPublish(setup: { root: string; databaseUrl: string; socketsPerThread: number; deadlineMs: number }): Promise<RawPublishFigures> {
  const events = await runFrames(setup.databaseUrl);
  const perThread = new Map<string, number>();
  for (const event of events) perThread.set(event.thread, (perThread.get(event.thread) ?? 0) + 1);
  const first = events[0]?.at ?? 0;
  const frames = events.map((e): [number, string, string] => [e.at - first, e.thread, e.frame]);
  const part = { root: setup.root, env: {}, flags: nodeFlags(setup.root, 'gateway'), fds: 1_048_576 };
  const publisher = await startRawPart('raw-publish', 'loadtest/bench/raw-publish.ts', part);
  const clients = await startRawPart('raw-clients', 'loadtest/bench/raw-publish-clients.ts', part).catch(async (error: unknown) => {
    await publisher.stop();
    throw error;
  });
  try {
    const open: ToRawClients = {
      type: 'open',
      url: `ws://127.0.0.1:${publisher.port}/`,
      topics: [...perThread].map(([thread, count]) => [thread, setup.socketsPerThread, count]),
      deadlineMs: setup.deadlineMs,
    };
    const subscribed = next<Extract<FromRawClients, { type: 'subscribed' }>>(clients, 'subscribed', setup.deadlineMs);
    clients.child.send(open);
    const { sockets } = await subscribed;
    const cpu = async () => {
      const answer = next<Extract<FromRawPublish, { type: 'cpu' }>>(publisher, 'cpu', 10_000);
      publisher.child.send({ type: 'cpu' } satisfies ToRawPublish);
      const { userUs, systemUs } = await answer;
      return (userUs + systemUs) / 1000;
    };
    const before = await cpu();
    const started = performance.now();
    const received = next<Extract<FromRawClients, { type: 'received' }>>(clients, 'received', setup.deadlineMs);
    publisher.child.send({ type: 'replay', frames } satisfies ToRawPublish);
    const { frames: delivered } = await received;
    const seconds = (performance.now() - started) / 1000;
    const cpuMs = (await cpu()) - before;
    return { frames: frames.length, delivered, sockets, seconds, cpu_ms: cpuMs, us_per_delivered: delivered ? (cpuMs * 1000) / delivered : NaN };
  } finally {
    await Promise.all([publisher.stop(), clients.stop()]);
  }
}
