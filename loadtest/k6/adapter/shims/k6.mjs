// `k6`: check() records the built-in `checks` rate (and each check's passes and fails), fail()
// throws. sleep() cannot block a Node thread, so the adapter refuses it: scripts here use timers.
import { record } from '../runtime.mjs';

export function check(value, sets, tags = {}) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let passed;
    try {
      passed = typeof fn === 'function' ? Boolean(fn(value)) : Boolean(fn);
    } catch {
      passed = false;
    }
    record('checks', 'rate', false, passed ? 1 : 0, { ...tags, check: name });
    all &&= passed;
  }
  return all;
}

export function fail(message) {
  throw new Error(message);
}

export function sleep() {
  throw new Error('sleep() is not supported by the k6 adapter: use setTimeout from k6/timers');
}

export function group(name, fn) {
  return fn();
}

export default { check, fail, sleep, group };
