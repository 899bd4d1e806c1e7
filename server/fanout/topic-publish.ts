/**
 * The gateway's second send path, beside `Connection.send` (../ws/connection.ts): a uWS topic
 * publish. One publish reaches every socket subscribed to a thread's topic without a loop over the
 * sockets in JavaScript, which is what keeps a busy thread with many followers cheap. uWS writes to
 * the sockets itself, so what `Connection.send` does for one socket is done here for all of them:
 *
 * - each frame is counted out once per subscriber (metrics.frameOut with the subscriber count);
 * - every subscriber's buffer is checked against MAX_BUFFERED_BYTES after the publish
 *   (`checkBackpressure`, again after uWS's end-of-iteration write), and a socket past it is closed
 *   with 1013: a slow consumer is cut off, never skipped, so no subscriber silently misses a frame
 *   (uWS's own maxBackpressure, which would skip it, is set far above that bound).
 *
 * Only thread events travel this way, and only to followers that are level with the live stream
 * (./live-delivery.ts decides when a socket joins); everything else goes through its
 * Connection.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Connection } from '../ws/connection.js';
import { metrics } from '../../metrics/index.js';

export class Topic {
  private readonly subscribers = new Set<Connection>();

  constructor(private readonly app: TemplatedApp, readonly name: string) {}

  /** The socket gets every publish from now on. */
  subscribe(connection: Connection): void {
    if (connection.closed || !connection.ws) return;
    connection.ws.subscribe(this.name);
    this.subscribers.add(connection);
  }

  /** The socket gets no more publishes (a closed socket has already left every topic). */
  unsubscribe(connection: Connection): void {
    if (!this.subscribers.delete(connection)) return;
    if (!connection.closed) connection.ws?.unsubscribe(this.name);
  }

  /** Sends `frame` to every subscriber, counted, with the slow-consumer check on each. */
  publish(frame: string): void {
    metrics.frameOut(frame, this.app.numSubscribers(this.name));
    this.app.publish(this.name, frame, false);
    for (const connection of this.subscribers) connection.checkBackpressure();
  }
}
