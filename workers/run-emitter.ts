/**
 * Writes a run's events through the process's event log (group commit: stored with the events of
 * every other run in flight, seq assigned there, fenced by the run's attempt; published once
 * stored). A publish that fails is only logged: the event is stored, and gateways fill gaps from
 * the log (and re-sync from it when their broker connection comes back).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { runEventsAfter, type AppendItem, type RunMessage, type StoredEvent, type WriteFence } from '../db/events.repository.js';
import { isConnectionError } from '../errors/backing-services.js';
import type { RunOutcome } from '../db/schema.js';
import type { Database } from '../db/schema.js';
import type { EventPayloads, EventType } from '../protocol/frames.js';
import { UncertainWriteError, type AppendedEvent, type EventLog } from '../events/event-log.js';
import { voidEventWrite } from '../db/event-writes.repository.js';

export interface EmitterOptions {
  /** The thread's last seq when this attempt claimed the run: later events of the run are its own. */
  afterSeq: number;
  /** How long a write is retried while the database is unreachable. @defaultValue 30000 */
  retryWindowMs?: number;
  /** The process's event log: the run's events are appended (and published) through it. */
  events: EventLog;
}

/** An event of the run, and the run's message stored with it (same transaction), if any. */
export type RunEvent = { [T in EventType]: { type: T; payload: EventPayloads[T]; message?: RunMessage } }[EventType];

/**
 * A write that failed because the database was unreachable is retried with backoff for a while,
 * so a database restart pauses a turn instead of failing it. Before each retry the emitter settles
 * the lost write by its id (the connection can drop after COMMIT, before the answer, or the write
 * can still be held up in a cut network): voided, it never committed and a late copy of it will
 * fail, so it is written again; committed, its events are looked up instead (only this attempt
 * writes the run's events after `afterSeq`, so events of the run newer than the last one it saw,
 * of the types it wrote, are that write). Nothing is written twice.
 */
export class RunEmitter {
  /** The seq of this attempt's newest event it knows is stored. */
  private lastSeq: number;
  private readonly retryWindowMs: number;
  private readonly events: EventLog;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly threadId: string,
    private readonly fence: WriteFence,
    private readonly log: Logger,
    options: EmitterOptions,
  ) {
    this.lastSeq = options.afterSeq;
    this.retryWindowMs = options.retryWindowMs ?? 30_000;
    this.events = options.events;
  }

  /** Events of this attempt stored elsewhere (the claim's opening events): published, and counted as this attempt's. */
  async opened(events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.lastSeq = Math.max(this.lastSeq, ...events.map((event) => event.seq));
    await this.events.publish(this.threadId, events);
  }

  async emit<T extends EventType>(type: T, payload: EventPayloads[T], message?: RunMessage): Promise<void> {
    await this.emitAll([{ type, payload, message } as RunEvent]);
  }

  /** Events stored together (one transaction: all or none), in this order. */
  async emitAll(events: RunEvent[]): Promise<void> {
    await this.appendDurably(events.map((event) => this.item(event)));
  }

  /**
   * The run's last write: `before` (the text still waiting in the coalescer), then
   * `agent_completed` with the final assistant message and the run's outcome, in one transaction:
   * a client that sees the event finds the run finished and its answer stored, and a run is never
   * finished without its event. Returns the thread's next queued run, if the write said.
   */
  async complete(
    payload: EventPayloads['agent_completed'],
    outcome: RunOutcome,
    options: { message: RunMessage; before?: RunEvent[] },
  ): Promise<string | undefined> {
    const completion: AppendItem = { ...this.item({ type: 'agent_completed', payload, message: options.message }), finish: outcome };
    const stored = await this.appendDurably([...(options.before ?? []).map((event) => this.item(event)), completion]);
    return stored.at(-1)?.nextRunId;
  }

  private item(event: RunEvent): AppendItem {
    return {
      threadId: this.threadId,
      draft: { type: event.type, run_id: this.fence.runId, payload: event.payload } as AppendItem['draft'],
      fence: this.fence,
      ...(event.message ? { message: event.message } : {}),
    };
  }

  private async appendDurably(items: AppendItem[]): Promise<AppendedEvent[]> {
    const deadline = Date.now() + this.retryWindowMs;
    let lost: UncertainWriteError | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const stored = (lost && (await this.landed(items, lost.writeId))) || (await this.events.append(items));
        this.lastSeq = Math.max(this.lastSeq, ...stored.map((event) => event.seq));
        return stored;
      } catch (error) {
        if (!isConnectionError(error) || Date.now() > deadline) throw error;
        if (error instanceof UncertainWriteError) lost = error;
        if (attempt === 0) this.log.warn({ err: error }, 'database unreachable; retrying the write');
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  /**
   * The items' events, if the lost write `writeId` committed: this attempt's events newer than
   * the last one it knows of, of the same types in the same order. Found, they are published
   * (their publish may never have happened). Undefined when it never committed (now it never
   * will) or stored none of them (refused): write them again.
   */
  private async landed(items: AppendItem[], writeId: string): Promise<StoredEvent[] | undefined> {
    if (await voidEventWrite(this.db, writeId)) return undefined;
    const rows = await runEventsAfter(this.db, this.threadId, this.fence.runId, this.lastSeq, items.length);
    if (rows.length !== items.length || rows.some((row, i) => row.type !== items[i]!.draft.type)) return undefined;
    const events = rows.map(({ seq, frame }) => ({ seq, frame }));
    await this.events.publish(this.threadId, events);
    return events;
  }
}
