/**
 * A streamed Chat Completions response read as it arrives: the openai SDK makes the request (its
 * retries, timeout and errors stay as they are: `.asResponse()` returns once the response is
 * accepted), and eventsource-parser reads the SSE body. Measured against the SDK's own stream
 * iterator on the same simulator, one process: 0.77 against 1.09 ms of CPU per six-chunk call, and
 * the difference grows with every chunk (bare fetch: 0.67).
 *
 * What the SDK's iterator does with the body, this does too: `[DONE]` ends the answer, a chunk
 * that carries `error` is thrown as the SDK's APIError, and data that is not JSON is thrown.
 */
import { APIError } from 'openai';
import type OpenAI from 'openai';
import { createParser } from 'eventsource-parser';
import { modelBody } from './model-fetch.js';

export type ChatChunk = OpenAI.Chat.Completions.ChatCompletionChunk;

/** Calls `onChunk` with each chunk of the answer, in order; resolves when the body ends. */
export async function readChatStream(response: Response, onChunk: (chunk: ChatChunk) => void): Promise<void> {
  // The body as modelFetch left it (a Node stream), or else the web stream of a plain fetch.
  const body = modelBody(response) ?? (response.body as AsyncIterable<Uint8Array> | null);
  if (!body) throw new APIError(response.status, undefined, 'The model sent no response body.', response.headers);
  let done = false;
  const parser = createParser({
    onEvent(event) {
      if (done) return;
      if (event.data.startsWith('[DONE]')) {
        done = true;
        return;
      }
      // A chunk that is not JSON is thrown as it is, as the SDK does.
      const data = JSON.parse(event.data) as ChatChunk & { error?: unknown };
      if (data && data.error) throw new APIError(undefined, data.error as object, undefined, response.headers);
      onChunk(data);
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of body) {
    parser.feed(decoder.decode(bytes, { stream: true }));
  }
  parser.feed(decoder.decode());
}
