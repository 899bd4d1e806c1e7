/**
 * The browser bundles as `npm install` builds them (scripts/build-web.mjs): the SDK stays within
 * its 10 KB gzipped budget and holds nothing Node-only and no validator; the package entries
 * point at files that exist and load.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildWeb, CLIENT_BUDGET, DIST, type BundleResult } from '../scripts/build-web.mjs';
import { ROOT } from './support/process.js';

const test = suite<{ bundles: BundleResult[] }>('browser bundles');

test.before(async (ctx) => {
  ctx.bundles = await buildWeb({ quiet: true });
});

test('the SDK bundle is at most 10 KB gzipped and bundles only protocol/ sources', async ({ bundles }) => {
  const sdk = bundles.find((b) => b.name === 'client.js')!;
  assert.ok(sdk.gzipBytes <= CLIENT_BUDGET, `client.js is ${sdk.gzipBytes} bytes gzipped (budget ${CLIENT_BUDGET})`);
  assert.ok(sdk.gzipBytes > 1000, 'the measure is of a real bundle');
  for (const input of sdk.inputs) assert.match(input, /^protocol\//, `only protocol sources: ${input}`);
  assert.not.ok(sdk.inputs.some((i) => /validate|schemas|ajv/.test(i)), 'no validator in the browser bundle');
  const code = await readFile(path.join(DIST, 'client.js'), 'utf8');
  assert.not.match(code, /require\(|from\s*["']node:|import\(["'](?!\.)/, 'no Node or bare imports');
});

test('the widget bundle carries the Markdown renderer and the sanitiser, and the classic script defines the element', async ({ bundles }) => {
  const widget = bundles.find((b) => b.name === 'widget.js')!;
  assert.ok(widget.inputs.some((i) => i.includes('node_modules/marked/')));
  assert.ok(widget.inputs.some((i) => i.includes('node_modules/dompurify/')));
  const script = await readFile(path.join(DIST, 'convo-chat.js'), 'utf8');
  assert.match(script, /customElements/);
  assert.not.match(script, /^\s*(import|export)\s/m, 'a classic script: no module syntax');
});

test('the package entries resolve to built files, with declarations, and the SDK entry loads in Node', async () => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  assert.not.ok(pkg.private, 'publishable');
  assert.equal(pkg.license, 'MIT');
  for (const entry of ['./client', './widget']) {
    for (const file of [pkg.exports[entry].import, pkg.exports[entry].types]) {
      assert.ok((await stat(path.join(ROOT, file))).size > 0, `${entry}: ${file}`);
    }
  }
  const sdk = await import(pathToFileURL(path.join(ROOT, pkg.exports['./client'].import)).href);
  assert.type(sdk.ConversationClient, 'function');
  assert.equal(sdk.socketUrl('https://chat.example.com'), 'wss://chat.example.com/v1/ws');
  // The widget module loads where there is no DOM (server-side rendering) without defining anything.
  const widget = await import(pathToFileURL(path.join(ROOT, pkg.exports['./widget'].import)).href);
  assert.type(widget.ConvoChat, 'function');
});

test.run();
