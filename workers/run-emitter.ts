/**
 * Writes a run's events: append to the log (seq assigned there, fenced by the run's attempt), then
 * publish on the thread's channel. A publish that fails is only logged: the event is stored, and
 * gateways fill gaps from the log.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { threadChannel } from '../broker/index.js';
import { appendEvent, FencedError, type StoredEvent, type WriteFence } from '../db/events.repository.js';
import { finishRun, type RunOutcome } from '../db/runs.repository.js';
import type { Database } from '../db/schema.js';
import type { EventPayloads, EventType } from '../protocol/frames.js';
import { encodeBrokerEvent } from '../server/thread-fanout.js';

export class RunEmitter {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly broker: Broker,
    private readonly threadId: string,
    private readonly fence: WriteFence,
    private readonly log: Logger,
  ) {}

  async emit<T extends EventType>(type: T, payload: EventPayloads[T]): Promise<void> {
    await this.publish(await appendEvent(this.db, this.threadId, { type, run_id: this.fence.runId, payload }, this.fence));
  }

  /**
   * Appends `agent_completed` and records the run's outcome in one transaction: a client that sees
   * the event finds the run finished, and a run is never finished without its event.
   */
  async complete(payload: EventPayloads['agent_completed'], outcome: RunOutcome): Promise<void> {
    const event = await this.db.transaction().execute(async (trx) => {
      const stored = await appendEvent(trx, this.threadId, { type: 'agent_completed', run_id: this.fence.runId, payload }, this.fence);
      if (!(await finishRun(trx, this.fence, outcome))) throw new FencedError(this.fence.runId);
      return stored;
    });
    await this.publish(event);
  }

  private async publish(event: StoredEvent): Promise<void> {
    try {
      await this.broker.publish(threadChannel(this.threadId), encodeBrokerEvent(event.seq, event.frame));
    } catch (error) {
      this.log.warn({ err: error, seq: event.seq }, 'event stored but not published');
    }
  }
}

/**
 * Coalesces streamed text into `message_delta` events: a delta is written when 50 ms have passed
 * since the last one or 512 characters are waiting, and on flush(). Fewer, larger events keep the
 * log and the sockets light without visible latency.
 */
export class DeltaCoalescer {
  private pending = '';
  private lastFlush = 0;
  text = '';

  constructor(
    private readonly emitter: RunEmitter,
    private readonly messageId: string,
    private readonly intervalMs = 50,
    private readonly maxChars = 512,
  ) {}

  async push(delta: string): Promise<void> {
    if (!delta) return;
    this.pending += delta;
    this.text += delta;
    if (this.pending.length >= this.maxChars || Date.now() - this.lastFlush >= this.intervalMs) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.pending) return;
    const delta = this.pending;
    this.pending = '';
    this.lastFlush = Date.now();
    await this.emitter.emit('message_delta', { message_id: this.messageId, delta });
  }
}
