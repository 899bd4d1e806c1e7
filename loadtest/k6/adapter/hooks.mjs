// Node module resolution hooks: `k6`, `k6/websockets`, `k6/ws`-free scripts, `k6/metrics`,
// `k6/encoding`, `k6/crypto` and `k6/timers` load the adapter's implementations over `ws` and
// node:crypto. Anything else resolves as usual.
const SHIMS = {
  k6: 'k6.mjs',
  'k6/websockets': 'websockets.mjs',
  'k6/metrics': 'metrics.mjs',
  'k6/encoding': 'encoding.mjs',
  'k6/crypto': 'crypto.mjs',
  'k6/timers': 'timers.mjs',
};

export async function resolve(specifier, context, nextResolve) {
  const shim = SHIMS[specifier];
  if (shim) return { url: new URL(`./shims/${shim}`, import.meta.url).href, shortCircuit: true };
  if (specifier.startsWith('k6/')) throw new Error(`${specifier} is not provided by the k6 adapter (loadtest/k6/adapter)`);
  return nextResolve(specifier, context);
}
