/**
 * The process's one clock for token lifetimes (server/ws/token-clock.ts): entries are the owners
 * themselves, due in order at their times, taken out at once when cancelled or moved; times are
 * kept as small integers after the clock's origin, and an origin days old is moved up to now
 * without changing when anything comes due.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TokenClock, type ClockEntry } from '../server/ws/token-clock.js';

const test = suite('token clock');

class Owner implements ClockEntry {
  clockAt = 0;
  clockIndex = -1;
  firedAt?: number;
  constructor(readonly name: string, private readonly fired: string[]) {}
  due(): void {
    this.firedAt = Date.now();
    this.fired.push(this.name);
  }
}

function waitUntil(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

test('entries come due in order at their times; a cancelled or moved one is not called where it was', async () => {
  const clock = new TokenClock();
  const fired: string[] = [];
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => new Owner(name, fired));
  const start = Date.now();
  clock.schedule(c!, start + 120);
  clock.schedule(a!, start + 40);
  clock.schedule(b!, start + 80);
  clock.schedule(d!, start + 60);
  clock.cancel(d!);
  clock.cancel(d!); // twice is fine
  assert.is(d!.clockIndex, -1, 'a cancelled entry has left the heap');
  clock.schedule(b!, start + 160); // moved later
  await waitUntil(() => fired.length === 3, 2_000, 'three entries');
  assert.equal(fired, ['a', 'c', 'b']);
  assert.ok(a!.firedAt! >= start + 40 && c!.firedAt! >= start + 120 && b!.firedAt! >= start + 160, 'none early');
  for (const owner of [a, b, c]) assert.is(owner!.clockIndex, -1, 'a fired entry has left the heap');
  assert.is(d!.firedAt, undefined);
});

test('times are small integers after the origin; an origin days old is moved up to now first', async () => {
  const clock = new TokenClock();
  const fired: string[] = [];
  clock.origin -= 7 * 24 * 3600 * 1000; // a clock started a week ago
  const originBefore = clock.origin;
  const start = Date.now();
  const early = new Owner('early', fired);
  clock.schedule(early, start + 150);
  assert.ok(clock.origin >= start, 'the origin moved up to now');
  assert.ok(clock.origin > originBefore);
  assert.ok(Number.isInteger(early.clockAt) && early.clockAt >= 0 && early.clockAt < 2 ** 31, `a small integer time (${early.clockAt})`);
  const later = new Owner('later', fired);
  clock.schedule(later, start + 100);
  await waitUntil(() => fired.length === 2, 2_000, 'both entries');
  assert.equal(fired, ['later', 'early']);
  assert.ok(later.firedAt! >= start + 100 && early.firedAt! >= start + 150, 'none early');
  assert.ok(early.firedAt! < start + 1_150, 'none late by the shift');
});

test('an entry already in the heap when the origin is moved keeps its time', async () => {
  const clock = new TokenClock();
  const fired: string[] = [];
  const waiting = new Owner('waiting', fired);
  const start = Date.now();
  clock.schedule(waiting, start + 200);
  const dueAt = clock.origin + waiting.clockAt;
  // The origin falls days behind while the entry waits (as on a gateway up for a week): the next
  // schedule moves it up, and the waiting entry's time with it.
  clock.origin -= 7 * 24 * 3600 * 1000;
  waiting.clockAt += 7 * 24 * 3600 * 1000;
  const next = new Owner('next', fired);
  clock.schedule(next, start + 50);
  assert.is(clock.origin + waiting.clockAt, dueAt, 'the waiting entry is due when it was');
  assert.ok(Math.abs(waiting.clockAt) < 2 ** 31);
  await waitUntil(() => fired.length === 2, 2_000, 'both entries');
  assert.equal(fired, ['next', 'waiting']);
  assert.ok(waiting.firedAt! >= start + 200 && waiting.firedAt! < start + 1_200);
});

test.run();
