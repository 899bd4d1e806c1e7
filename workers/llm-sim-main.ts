/**
 * CLI entry for the LLM simulator: `npm run llm-sim` (`node dist/llm-sim.js`; the source runs with
 * `node --import tsx workers/llm-sim-main.ts`).
 * Env: LLM_SIM_PORT (default 8090), LLM_SIM_HOST (default 127.0.0.1),
 *      LLM_SIM_FIRST_TOKEN_DELAY_MS, LLM_SIM_TOKEN_DELAY_MS, LLM_SIM_REPLY_WORDS.
 * Directives and behaviour: see workers/llm-sim.ts.
 */
import { startLlmSim, type LlmSimOptions } from './llm-sim.js';

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

const opts: LlmSimOptions = {
  host: process.env.LLM_SIM_HOST || '127.0.0.1',
  port: envNumber('LLM_SIM_PORT') ?? 8090,
  recordRequests: false,
};
const first = envNumber('LLM_SIM_FIRST_TOKEN_DELAY_MS');
const delay = envNumber('LLM_SIM_TOKEN_DELAY_MS');
const words = envNumber('LLM_SIM_REPLY_WORDS');
if (first !== undefined) opts.firstTokenDelayMs = first;
if (delay !== undefined) opts.tokenDelayMs = delay;
if (words !== undefined) opts.replyWords = words;

const sim = await startLlmSim(opts);
console.log(`llm-sim listening: ${sim.baseURL}`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void sim.close().then(() => process.exit(0));
  });
}
