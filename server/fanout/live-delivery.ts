/**
 * One event of a thread's live stream, handed to the thread's followers here: sockets on the topic
 * get it from one publish; a socket still replaying keeps it in its buffer; a socket past its
 * replay but not yet level with the stream gets it directly unless it has it already, and joins
 * the topic the moment it is level. The switch happens synchronously inside a delivery, so nothing
 * is missed or doubled.
 */
import { metrics } from '../../metrics/index.js';
import type { Follower, ThreadState } from './thread-state.js';

/** Forwards the event `seq` unless the stream is already past it. */
export function deliver(state: ThreadState, seq: number, frame: string): void {
  if (state.lastSeq !== null && seq <= state.lastSeq) return;
  state.lastSeq = seq;
  metrics.fanout(frame);
  state.topic.publish(frame);
  for (const follower of state.followers.values()) {
    switch (follower.mode) {
      case 'live':
        follower.sentSeq = seq;
        break;
      case 'replaying':
        follower.buffer.push({ seq, frame });
        break;
      case 'catching_up':
        if (seq > follower.sentSeq) {
          follower.connection.send(frame);
          follower.sentSeq = seq;
        }
        goLiveIfLevel(state, follower);
        break;
    }
  }
}

/** Puts `follower` on the topic if it has exactly what the live stream has forwarded. */
export function goLiveIfLevel(state: ThreadState, follower: Follower): void {
  // Level means equal: a socket ahead of the live stream (the log had events the broker had not
  // delivered yet) stays in catch-up, which skips what it already has, until the stream reaches it.
  if (state.lastSeq === null || follower.sentSeq !== state.lastSeq || follower.connection.closed) return;
  follower.mode = 'live';
  state.topic.subscribe(follower.connection);
}
