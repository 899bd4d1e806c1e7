// Registers the k6 module hooks (hooks.mjs) for the thread that imports this first: the runner
// and every VU worker do, so `import ... from 'k6/websockets'` resolves to the adapter.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
