/**
 * The delta coalescer on its own: text a model streams may split a surrogate pair between chunks
 * (an emoji), or carry a lone half; what reaches the log must be the text the model meant, and
 * storable. The emitter here only records what it is asked to write.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeltaCoalescer } from '../workers/delta-coalescer.js';
import type { RunEmitter } from '../workers/run-emitter.js';

function recorder() {
  const deltas: string[] = [];
  const emitter = { emit: async (_type: string, payload: { delta: string }) => void deltas.push(payload.delta) } as unknown as RunEmitter;
  return { deltas, emitter };
}

test('a surrogate pair split between chunks is joined again, whenever the chunks are written', async () => {
  // intervalMs 0: every push writes at once, the case where a held half could be cut off.
  const { deltas, emitter } = recorder();
  const text = new DeltaCoalescer(emitter, 'm_1', 0);
  text.push('Hi \ud83d');
  text.push('\udc4b there');
  await text.flush();
  assert.is(deltas.join(''), 'Hi 👋 there');
  assert.is(text.text, 'Hi 👋 there');
  for (const delta of deltas) assert.ok((delta as string & { isWellFormed(): boolean }).isWellFormed(), JSON.stringify(delta));
});

test('lone halves become U+FFFD: in the middle, and at the end of the text', async () => {
  const { deltas, emitter } = recorder();
  const text = new DeltaCoalescer(emitter, 'm_2', 0);
  text.push('a\udfffb');
  text.push('end\ud83d');
  await text.flush();
  assert.is(deltas.join(''), 'a\ufffdbend\ufffd');
  assert.is(text.text, deltas.join(''), 'the stored answer is what the deltas add up to');
});

test('the last pending text, taken for the final write, includes a held half', async () => {
  const { deltas, emitter } = recorder();
  const text = new DeltaCoalescer(emitter, 'm_3', 60_000);
  text.push('x');
  text.push('y\ud83d');
  const last = text.takePending();
  assert.equal(deltas, ['x'], 'the first push wrote at once');
  assert.is((last[0]!.payload as { delta: string }).delta, 'y\ufffd');
});

test.run();
