/**
 * The messages a client has sent and the server has not yet acknowledged: their frames (each with
 * a client_message_id, the key that makes a retry safe) and the outbox view of them that a UI
 * shows as "not sent yet".
 */
import type { ClientPayloads } from '../frames.js';
import type { RequestBook } from './requests.js';
import type { OutboxEntry, SendOptions } from './types.js';

/** The `message.send` payload for `content`, with a fresh client_message_id unless one is given. */
export function sendPayload(content: string, options: SendOptions): ClientPayloads['message.send'] {
  return {
    content,
    client_message_id: options.clientMessageId ?? newClientMessageId(),
    ...(options.threadId ? { thread_id: options.threadId } : {}),
    ...(options.agentId ? { agent_id: options.agentId } : {}),
    ...(options.onBusy ? { on_busy: options.onBusy } : {}),
  };
}

/** Sends waiting for their ack, oldest first. */
export function outboxOf(book: RequestBook): OutboxEntry[] {
  return book.all().filter((r) => r.type === 'message.send').map((r) => {
    const p = r.payload() as ClientPayloads['message.send'];
    return { clientMessageId: p.client_message_id!, threadId: p.thread_id, content: p.content, state: r.state === 'sent' ? 'sent' : 'queued' };
  });
}

/**
 * A client_message_id: random, and also available outside secure contexts (no randomUUID there).
 * Pass one to `send` (and again to resend the same message) to make a retry safe.
 */
export function newClientMessageId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
