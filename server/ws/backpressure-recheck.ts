/**
 * Sockets to look at again once uWS has written what it queued in this loop iteration. uWS does
 * that in its libuv check handle, which runs before Node's setImmediate callbacks (it is started
 * later, and libuv runs the newest check handle first); a look that came too early would only
 * find the socket within bounds, never close one wrongly. One immediate serves every socket.
 */

/** A socket whose buffer can be checked against its bound (a Connection). */
export interface BoundedSocket {
  /** Closes the socket with 1013 if it holds more than its bound. */
  overBound(): boolean;
  /** An unexpected error: closes only this socket (1011). */
  fail(error: unknown): void;
}

const recheck = new Set<BoundedSocket>();

/** Checks `socket` against its bound again after uWS's end-of-iteration write. */
export function recheckLater(socket: BoundedSocket): void {
  if (recheck.size === 0) {
    setImmediate(() => {
      const due = [...recheck];
      recheck.clear();
      for (const c of due) {
        try {
          c.overBound();
        } catch (error) {
          c.fail(error);
        }
      }
    });
  }
  recheck.add(socket);
}
