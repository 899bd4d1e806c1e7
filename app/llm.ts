/**
 * Which model the workers talk to, decided once: the configured OpenAI-compatible endpoint
 * (OPENAI_API_KEY / OPENAI_BASE_URL), or else the project's own simulator started here on a free
 * loopback port. Either way through the real openai SDK over HTTP.
 */
import type OpenAI from 'openai';
import type { Config } from '../config/config.js';

export interface Llm {
  client: OpenAI;
  /** For the log and the banner. */
  description: string;
  /** Stops the simulator, if one was started. */
  close(): Promise<void>;
}

export async function startLlm(config: Readonly<Config>): Promise<Llm> {
  // Loaded only by a process that runs turns: the openai SDK and the simulator cost a
  // gateway-only process memory and start-up time for nothing.
  const { createLlmClient } = await import('../workers/llm-client.js');
  const settings = { timeoutMs: config.llm.timeoutMs, maxRetries: config.llm.maxRetries };
  if (config.llm.apiKey || config.llm.baseUrl) {
    const baseURL = config.llm.baseUrl ?? 'https://api.openai.com/v1';
    return {
      client: createLlmClient({ ...settings, baseURL, apiKey: config.llm.apiKey ?? 'not-needed' }),
      description: `${baseURL} model ${config.llm.model}`,
      close: async () => {},
    };
  }
  const { startLlmSim } = await import('../workers/llm-sim.js');
  const sim = await startLlmSim({ tokenDelayMs: 15, firstTokenDelayMs: 100, recordRequests: false });
  return {
    client: createLlmClient({ ...settings, baseURL: sim.baseURL, apiKey: 'not-needed' }),
    description: `built-in simulator at ${sim.baseURL} (set OPENAI_API_KEY or OPENAI_BASE_URL for a real model)`,
    close: () => sim.close(),
  };
}
