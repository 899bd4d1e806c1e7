import OpenAI from 'openai';

export interface LlmClientOptions {
  baseURL: string;
  apiKey: string;
  timeoutMs: number;
  maxRetries: number;
}

/**
 * The one way turns reach a model: the official openai SDK, whatever serves the endpoint. The SDK
 * retries 429 (honouring retry-after), 5xx and connection errors with exponential backoff.
 */
export function createLlmClient(options: LlmClientOptions): OpenAI {
  return new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
}
