/**
 * Recording a user's turn: the thread (created when absent), the user message, the queued run and
 * the `message_created` event, all in one transaction, idempotent on `client_message_id`. One round
 * trip: the `record_turn` function of migration 0004 does the work under the same locks as before
 * (the idempotency key, the thread's row, the user's active-run count).
 */
import { sql, type Kysely } from 'kysely';
import { newId } from './ids.js';
import { autoTitle } from './thread-title.js';
import { toFrame, type StoredEvent } from './events.repository.js';
import type { Owner } from './owner.js';
import type { ClientToolDef, Database } from './schema.js';
import { DEFAULT_AGENT_ID } from './agents.repository.js';

export interface TurnInput {
  content: string;
  threadId?: string;
  agentId?: string;
  clientMessageId?: string;
  /** Overrides the agent's busy_policy for this message. */
  onBusy?: 'enqueue' | 'reject' | 'interrupt';
  /** RATE_LIMIT_RUNS_PER_USER: refuse (`rate_limited`) when the user already has this many queued or running runs. 0 or absent: no limit. */
  maxActiveRuns?: number;
  /** Tools the client offers for this run (runs.client_tools), stored in the same transaction. */
  clientTools?: ClientToolDef[];
}

export interface RecordedTurn {
  threadId: string;
  messageId: string;
  runId: string;
  /** The seq of this turn's `message_created` event. */
  fromSeq: number;
  /** True when client_message_id matched an earlier send: nothing new was stored. */
  deduplicated: boolean;
  /** The stored `message_created` event (absent when deduplicated). */
  event?: StoredEvent;
  /** `interrupt`: events of queued runs cancelled here (publish them), and running runs to signal. */
  cancelledEvents: StoredEvent[];
  interruptRunIds: string[];
}

/** A thread or agent the caller named does not exist for them, the thread is busy, or the user has too many active runs. */
export class TurnRejected extends Error {
  constructor(readonly code: 'not_found' | 'conflict' | 'thread_busy' | 'rate_limited', message: string) {
    super(message);
    this.name = 'TurnRejected';
  }
}

/** The SQLSTATE record_turn raises a refusal with (its code is in DETAIL). */
const TURN_REJECTED = 'CVR01';

interface TurnRow {
  thread_id: string;
  message_id: string;
  run_id: string;
  from_seq: number;
  deduplicated: boolean;
  event?: { type: string; seq: number; payload: unknown };
  cancelled?: Array<{ type: string; seq: number; payload: unknown }>;
  interrupt?: string[];
}

/**
 * Behaviour, as `record_turn` implements it:
 * - with `clientMessageId`, sends sharing the key are serialised (an advisory lock) and a retry
 *   finds the original: the same ids, `deduplicated`, nothing stored;
 * - an existing thread must be the owner's (else not_found) and, if `agentId` is given, bound to
 *   that agent (else conflict); its row lock serialises sends and claims on it;
 * - a busy thread (a run queued or running) applies `onBusy` or the agent's busy_policy: enqueue,
 *   reject (thread_busy), or interrupt (queued runs cancelled here with their agent_completed,
 *   running ones returned to be signalled);
 * - without a thread, the agent (default: the seeded one) must be usable in the workspace, and the
 *   new thread's title is the start of the content (`autoTitle`: 80 UTF-16 units, cut between characters);
 * - `maxActiveRuns` is checked under the user's advisory lock, after an interrupt's cancellations.
 */
export async function recordTurn(db: Kysely<Database>, owner: Owner, input: TurnInput): Promise<RecordedTurn> {
  let row: TurnRow;
  const record = async (db: Kysely<Database>) => {
    const { rows } = await sql<{ turn: TurnRow }>`
      select record_turn(
        ${owner.workspaceId}, ${owner.userId}, ${input.threadId ?? null}, ${input.agentId ?? null}, ${DEFAULT_AGENT_ID},
        ${input.content}, ${autoTitle(input.content)}, ${input.clientMessageId ?? null}, ${input.onBusy ?? null},
        ${input.maxActiveRuns ?? 0}::int, ${newId('t')}, ${newId('m')}, ${newId('run')}) as turn`.execute(db);
    return rows[0]!.turn;
  };
  const clientTools = input.clientTools?.length ? JSON.stringify(input.clientTools) : undefined;
  try {
    // With client tools, the run is stored with them before any worker can claim it.
    row = clientTools === undefined ? await record(db) : await db.transaction().execute(async (trx) => {
      const turn = await record(trx);
      if (!turn.deduplicated) await trx.updateTable('runs').set({ client_tools: clientTools }).where('id', '=', turn.run_id).execute();
      return turn;
    });
  } catch (error) {
    const { code, detail, message } = error as { code?: string; detail?: string; message?: string };
    if (code === TURN_REJECTED) throw new TurnRejected(detail as TurnRejected['code'], message ?? detail ?? 'refused');
    throw error;
  }
  const stored = (e: { type: string; seq: number; payload: unknown }): StoredEvent => ({ seq: e.seq, frame: toFrame(e.type, e.payload) });
  return {
    threadId: row.thread_id,
    messageId: row.message_id,
    runId: row.run_id,
    fromSeq: row.from_seq,
    deduplicated: row.deduplicated,
    ...(row.event ? { event: stored(row.event) } : {}),
    cancelledEvents: (row.cancelled ?? []).map(stored),
    interruptRunIds: row.interrupt ?? [],
  };
}
