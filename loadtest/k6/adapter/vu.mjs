// One virtual user in a worker thread of its own (so `__VU`, `__ITER` and module state are its
// own, as in k6): loads the script, then runs an iteration each time the runner asks, waits until
// its sockets and timers are done, and reports the samples and any exception.
import './register.mjs';
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { drained, takeSamples } from './runtime.mjs';

const { script, env, vu, data, exec } = workerData;
globalThis.__ENV = env;
globalThis.__VU = vu;
globalThis.__ITER = 0;

const module = await import(pathToFileURL(script).href);
const fn = exec ? module[exec] : module.default;
if (typeof fn !== 'function') throw new Error(`the script exports no ${exec ?? 'default'} function`);

parentPort.on('message', async (message) => {
  if (message.type !== 'iterate') return;
  globalThis.__ITER = message.iteration;
  globalThis.__k6AdapterErrors = 0;
  let error;
  try {
    await fn(data);
    await drained();
  } catch (thrown) {
    error = String(thrown?.stack ?? thrown);
  }
  if (!error && globalThis.__k6AdapterErrors > 0) error = `${globalThis.__k6AdapterErrors} exception(s) in event handlers`;
  parentPort.postMessage({ type: 'done', samples: takeSamples(), error });
});
parentPort.postMessage({ type: 'ready', samples: takeSamples() });
