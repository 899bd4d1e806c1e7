/**
 * The `ai` package's own chat client in Node, pointed at a node: an AbstractChat (what useChat
 * wraps, without React) with a DefaultChatTransport whose fetch records every response body as it
 * arrived and can cut a response mid-way, as a dropped network does.
 */
import {
  AbstractChat, DefaultChatTransport, parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema,
  type ChatInit, type ChatState, type ChatStatus, type UIMessage, type UIMessageChunk,
} from 'ai';

class NodeChatState implements ChatState<UIMessage> {
  status: ChatStatus = 'ready';
  error: Error | undefined = undefined;
  messages: UIMessage[] = [];
  pushMessage = (message: UIMessage) => {
    this.messages = [...this.messages, message];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index: number, message: UIMessage) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = <T>(thing: T): T => structuredClone(thing);
}

/** A chat held in memory; `chat.state.status` and `chat.messages` are what a UI would render. */
export class NodeChat extends AbstractChat<UIMessage> {
  constructor(init: Omit<ChatInit<UIMessage>, 'messages'>) {
    super({ ...init, state: new NodeChatState() });
  }
}

/** One response the transport received. */
export interface Recorded {
  method: string;
  url: string;
  status: number;
  headers: Headers;
  /** The body as far as it was read (all of it, unless cut). */
  body: string;
  /** Resolves once the body has ended (or was cut). */
  done: Promise<void>;
}

export interface ChatClient {
  chat: NodeChat;
  responses: Recorded[];
  /** Cut the next response once its body so far satisfies this (once). */
  cutWhen(predicate: (body: string) => boolean): Promise<void>;
}

/** A chat `id` against `base`, authenticated with `token`. */
export function chatClient(base: string, token: string, id: string, init: Partial<Omit<ChatInit<UIMessage>, 'messages' | 'id' | 'transport'>> & { body?: object } = {}): ChatClient {
  const responses: Recorded[] = [];
  let cut: { predicate: (body: string) => boolean; done: () => void } | undefined;
  const recordingFetch = async (input: RequestInfo | URL, options?: RequestInit): Promise<Response> => {
    const res = await fetch(input, options);
    const record: Recorded = { method: options?.method ?? 'GET', url: String(input), status: res.status, headers: res.headers, body: '', done: Promise.resolve() };
    responses.push(record);
    if (!res.body) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const cutting = cut;
    cut = undefined;
    let finished!: () => void;
    record.done = new Promise((resolve) => (finished = resolve));
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) {
          finished();
          controller.close();
          return;
        }
        record.body += decoder.decode(value, { stream: true });
        if (cutting && cutting.predicate(record.body)) {
          // As a dropped connection: the body fails with a network TypeError and the socket closes.
          await reader.cancel().catch(() => {});
          finished();
          cutting.done();
          controller.error(new TypeError('network error: the connection was cut'));
          return;
        }
        controller.enqueue(value);
      },
      cancel: () => reader.cancel(),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const transport = new DefaultChatTransport<UIMessage>({
    api: `${base}/v1/ai-sdk/chat`,
    headers: { authorization: `Bearer ${token}` },
    fetch: recordingFetch as typeof fetch,
    ...(init.body ? { body: init.body } : {}),
  });
  const { body: _body, ...rest } = init;
  return {
    chat: new NodeChat({ id, transport, ...rest }),
    responses,
    cutWhen: (predicate) => new Promise<void>((resolve) => (cut = { predicate, done: resolve })),
  };
}

/** The chunks of a recorded body, through the SDK's own parser and schema; throws on an invalid one. */
export async function parseChunks(body: string): Promise<UIMessageChunk[]> {
  const stream = new Response(body).body!;
  const chunks: UIMessageChunk[] = [];
  const reader = parseJsonEventStream({ stream, schema: uiMessageChunkSchema }).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    if (!value.success) throw new Error(`an invalid chunk: ${value.error.message} in ${JSON.stringify(value.rawValue)}`);
    chunks.push(value.value as UIMessageChunk);
  }
}

/** The message the SDK's readUIMessageStream builds from `chunks` (its last snapshot). */
export async function rebuild(chunks: UIMessageChunk[], message?: UIMessage): Promise<UIMessage | undefined> {
  const stream = new ReadableStream<UIMessageChunk>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  let last: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream, ...(message ? { message } : {}), onError: () => {} })) last = snapshot;
  return last;
}
