// `k6/timers`: timers an iteration waits for (k6 ends an iteration only when none is pending).
import { trackTimer, untrackTimer } from '../runtime.mjs';

const handles = new Map();
let next = 1;

export function setTimeout(fn, ms = 0, ...args) {
  const id = next++;
  const handle = globalThis.setTimeout(() => {
    handles.delete(id);
    untrackTimer(id);
    fn(...args);
  }, ms);
  handles.set(id, handle);
  trackTimer(id);
  return id;
}

export function clearTimeout(id) {
  const handle = handles.get(id);
  if (handle === undefined) return;
  globalThis.clearTimeout(handle);
  handles.delete(id);
  untrackTimer(id);
}

export function setInterval(fn, ms = 0, ...args) {
  const id = next++;
  handles.set(id, globalThis.setInterval(() => fn(...args), ms));
  trackTimer(id);
  return id;
}

export const clearInterval = (id) => {
  const handle = handles.get(id);
  if (handle === undefined) return;
  globalThis.clearInterval(handle);
  handles.delete(id);
  untrackTimer(id);
};

export default { setTimeout, clearTimeout, setInterval, clearInterval };
