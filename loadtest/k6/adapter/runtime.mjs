// The state of one VU's JavaScript runtime (one worker thread, as each k6 VU has its own): the
// samples its metrics recorded since the last flush, and the sockets and timers still alive, which
// k6 waits for before an iteration ends.
const samples = [];
const definitions = new Map();
const sockets = new Set();
const timers = new Set();
let wake;

export function record(metric, type, isTime, value, tags) {
  samples.push({ metric, type, isTime, value, tags });
}

/** A metric constructed in the init context: a counter that never counted still reports 0. */
export function define(metric, type, isTime) {
  definitions.set(metric, { type, isTime });
}

export function defined() {
  return definitions;
}

export function takeSamples() {
  return samples.splice(0);
}

export function trackSocket(socket) {
  sockets.add(socket);
}

export function untrackSocket(socket) {
  sockets.delete(socket);
  wake?.();
}

export function trackTimer(handle) {
  timers.add(handle);
}

export function untrackTimer(handle) {
  timers.delete(handle);
  wake?.();
}

/** Resolves once no socket is open and no timer is pending: the iteration is over (as in k6). */
export function drained() {
  return new Promise((resolve) => {
    const check = () => {
      if (sockets.size === 0 && timers.size === 0) {
        wake = undefined;
        resolve();
      }
    };
    wake = check;
    check();
  });
}
