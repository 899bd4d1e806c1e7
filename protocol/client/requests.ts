/**
 * Requests waiting for their `ack` or `error`, matched by frame id. A request waits in the queue
 * while the client is offline and is sent once a session is ready; its timeout runs only while it
 * is on the wire. When the socket drops first, a request that is safe to repeat (`resend`) goes
 * back to the queue with the same id and payload (a `message.send` keeps its client_message_id,
 * so the server stores it once); any other is rejected with `connection_lost`.
 */
import type { ClientFrameType, ClientPayloads } from '../frames.js';
import { ConversationError } from './errors.js';

export interface PendingRequest {
  id: string;
  type: ClientFrameType;
  /** Computed when the frame is written (a resume asks from the newest seq at that moment). */
  payload: () => ClientPayloads[ClientFrameType];
  resend: boolean;
  /** Lower goes first when the queue is flushed (resubscriptions before queued sends). */
  priority: number;
  timeoutMs: number;
  sent: boolean;
  timer?: ReturnType<typeof setTimeout>;
  resolve(value: unknown): void;
  reject(error: ConversationError): void;
}

export class RequestBook {
  private readonly pending = new Map<string, PendingRequest>();
  private counter = 0;

  add(entry: Omit<PendingRequest, 'id' | 'sent' | 'resolve' | 'reject'>): { request: PendingRequest; promise: Promise<unknown> } {
    let resolve!: (value: unknown) => void;
    let reject!: (error: ConversationError) => void;
    const promise = new Promise<unknown>((res, rej) => ((resolve = res), (reject = rej)));
    const request: PendingRequest = { ...entry, id: `q${++this.counter}`, sent: false, resolve, reject };
    this.pending.set(request.id, request);
    return { request, promise };
  }

  get(id: string): PendingRequest | undefined {
    return this.pending.get(id);
  }

  /** Requests not on the wire, in the order they should be sent. */
  unsent(): PendingRequest[] {
    return [...this.pending.values()].filter((r) => !r.sent).sort((a, b) => a.priority - b.priority);
  }

  all(): PendingRequest[] {
    return [...this.pending.values()];
  }

  /** Marks a request written and starts its timeout. */
  sent(request: PendingRequest, onTimeout: (request: PendingRequest) => void): void {
    request.sent = true;
    request.timer = setTimeout(() => onTimeout(request), request.timeoutMs);
  }

  settle(id: string, error?: ConversationError, value?: unknown): PendingRequest | undefined {
    const request = this.pending.get(id);
    if (!request) return undefined;
    this.pending.delete(id);
    clearTimeout(request.timer);
    if (error) request.reject(error);
    else request.resolve(value);
    return request;
  }

  /** The socket dropped: requests on the wire go back to the queue or fail. */
  disconnected(): void {
    for (const request of this.pending.values()) {
      if (!request.sent) continue;
      clearTimeout(request.timer);
      request.sent = false;
      if (!request.resend) {
        this.settle(request.id, new ConversationError('connection_lost', `The connection dropped before the server answered ${request.type}; it may or may not have taken effect.`, true));
      }
    }
  }

  rejectAll(error: ConversationError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }
}
