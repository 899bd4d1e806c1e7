/**
 * Requests waiting for their `ack` or `error`, matched by frame id. A request waits in the queue
 * while the client is offline, or while as many requests as the window allows are on the wire
 * (the server lets only MAX_QUEUED_FRAMES wait per connection and refuses the rest); it is sent
 * once a session is ready and a slot is free. Its timeout runs only while it is on the wire.
 *
 * Order: requests go out in the order they were made (a follow then an unfollow leaves the thread
 * unfollowed); only `urgent` ones (the client's own resubscriptions and token refreshes) go ahead.
 *
 * When the socket drops first, a request that is safe to repeat (`resend`) goes back to the queue
 * with the same id and payload (a `message.send` keeps its client_message_id, so the server stores
 * it once); any other is rejected with `connection_lost`.
 */
import type { ClientFrameType, ClientPayloads } from '../frames.js';
import { ConversationError } from './errors.js';

export interface PendingRequest {
  id: string;
  type: ClientFrameType;
  /** Computed when the frame is written (a resume asks from the newest seq at that moment). */
  payload: () => ClientPayloads[ClientFrameType];
  resend: boolean;
  /** Goes ahead of the queue (resubscriptions, auth.refresh); the rest keep their order. */
  urgent: boolean;
  timeoutMs: number;
  /** `held`: refused for now (rate_limited), waiting to be retried. */
  state: 'queued' | 'sent' | 'held';
  /** Times the server refused it with a retryable error. */
  retries: number;
  /** UTF-8 size of the frame as last written. */
  bytes: number;
  timer?: ReturnType<typeof setTimeout>;
  resolve(value: unknown): void;
  reject(error: ConversationError): void;
}

export class RequestBook {
  /** In the order the requests were made (a Map keeps insertion order). */
  private readonly pending = new Map<string, PendingRequest>();
  private counter = 0;

  add(entry: Pick<PendingRequest, 'type' | 'payload' | 'resend' | 'urgent' | 'timeoutMs'>): { request: PendingRequest; promise: Promise<unknown> } {
    let resolve!: (value: unknown) => void;
    let reject!: (error: ConversationError) => void;
    const promise = new Promise<unknown>((res, rej) => ((resolve = res), (reject = rej)));
    const request: PendingRequest = { ...entry, id: `q${++this.counter}`, state: 'queued', retries: 0, bytes: 0, resolve, reject };
    this.pending.set(request.id, request);
    return { request, promise };
  }

  get(id: string): PendingRequest | undefined {
    return this.pending.get(id);
  }

  /** The next request to write: the oldest urgent one, else the oldest queued one. */
  next(): PendingRequest | undefined {
    let first: PendingRequest | undefined;
    for (const request of this.pending.values()) {
      if (request.state !== 'queued') continue;
      if (request.urgent) return request;
      first ??= request;
    }
    return first;
  }

  /** Requests not on the wire (queued or held), in the order they were made. */
  unsent(): PendingRequest[] {
    return this.all().filter((r) => r.state !== 'sent');
  }

  /** Requests on the wire. */
  get inFlight(): number {
    let count = 0;
    for (const request of this.pending.values()) if (request.state === 'sent') count += 1;
    return count;
  }

  all(): PendingRequest[] {
    return [...this.pending.values()];
  }

  /** Marks a request written and starts its timeout. */
  sent(request: PendingRequest, bytes: number, onTimeout: (request: PendingRequest) => void): void {
    request.state = 'sent';
    request.bytes = bytes;
    request.timer = setTimeout(() => onTimeout(request), request.timeoutMs);
  }

  /** Takes a refused request off the wire; `retry` puts it back in the queue after `delayMs`. */
  hold(request: PendingRequest, delayMs: number, retry: () => void): void {
    clearTimeout(request.timer);
    request.state = 'held';
    request.retries += 1;
    request.timer = setTimeout(() => {
      if (request.state !== 'held') return;
      request.state = 'queued';
      retry();
    }, delayMs);
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
    for (const request of [...this.pending.values()]) {
      if (request.state !== 'sent') continue;
      clearTimeout(request.timer);
      request.state = 'queued';
      if (!request.resend) {
        this.settle(request.id, new ConversationError('connection_lost', `The connection dropped before the server answered ${request.type}; it may or may not have taken effect.`, true));
      }
    }
  }

  rejectAll(error: ConversationError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }
}
