/**
 * The import rules of the runtime code (everything outside test/, loadtest/ and scripts/), checked by
 * dependency-cruiser in test/structure.test.ts (part of `npm test`), or by hand:
 *
 *   npx depcruise --config .dependency-cruiser.cjs --output-type err .
 *
 * The layering (see README, Contributing): protocol/ is the wire contract and is bundled for
 * browsers; app/ is the composition root, the only place that knows both roles; server/ is the
 * gateway, workers/ runs turns, events/ and db/ are below both.
 */

/**
 * The programs esbuild builds outside app/ (scripts/build-server.mjs ENTRY_POINTS; app/main.ts is in
 * app/): with app/ itself, the only files that may import app/. test/structure.test.ts checks that
 * every entry point of the build is let through.
 */
const ENTRY_POINTS = ['workers/llm-sim-main.ts', 'scripts/token.ts'];

/** Not runtime code: tests, load generators, build scripts, and what is built or installed. */
const NOT_RUNTIME = '^(test|loadtest|scripts|docs|dist|data|artifacts|bench-results|node_modules)/|(^|/)\\.';

const escape = (file) => file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: one of these files must stop importing the other (a type-only import counts).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'server-not-to-workers',
      severity: 'error',
      comment: 'The gateway does not know the worker: what both need lives below both, and app/ wires them.',
      from: { path: '^server/' },
      to: { path: '^workers/' },
    },
    {
      name: 'not-up-to-server',
      severity: 'error',
      comment: 'workers/, events/ and db/ sit below the gateway: a shared piece moves down (e.g. errors/), not up.',
      from: { path: '^(workers|events|db)/' },
      to: { path: '^server/' },
    },
    {
      name: 'protocol-stands-alone',
      severity: 'error',
      comment: 'protocol/ is bundled for browsers: it imports only protocol/ and npm packages, no Node built-in.',
      from: { path: '^protocol/' },
      to: { pathNot: '^(protocol/|node_modules/)' },
    },
    {
      name: 'app-is-the-root',
      severity: 'error',
      comment: 'app/ is the composition root: only the entry points import it.',
      from: { pathNot: `^app/|^(${ENTRY_POINTS.map(escape).join('|')})$` },
      to: { path: '^app/' },
    },
    {
      name: 'resolvable',
      severity: 'error',
      comment: 'An import that resolves to no file.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    exclude: { path: NOT_RUNTIME },
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle through `import type` is still two files that need each other.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
