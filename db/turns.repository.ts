/**
 * Recording a user's turn: the thread (created when absent), the user message, the queued run and
 * the `message_created` event, all in one transaction, idempotent on `client_message_id`.
 */
import { sql, type Kysely } from 'kysely';
import { newId } from './ids.js';
import { appendEvent, type StoredEvent } from './events.repository.js';
import { findUsableAgent } from './agents.repository.js';
import type { Owner } from './threads.repository.js';
import type { Database } from './schema.js';
import { DEFAULT_AGENT_ID } from './migrations/0001-initial.js';
import { cancelQueuedRunIn } from './runs.repository.js';

export interface TurnInput {
  content: string;
  threadId?: string;
  agentId?: string;
  clientMessageId?: string;
  /** Overrides the agent's busy_policy for this message. */
  onBusy?: 'enqueue' | 'reject' | 'interrupt';
  /** RATE_LIMIT_RUNS_PER_USER: refuse (`rate_limited`) when the user already has this many queued or running runs. 0 or absent: no limit. */
  maxActiveRuns?: number;
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

export async function recordTurn(db: Kysely<Database>, owner: Owner, input: TurnInput): Promise<RecordedTurn> {
  return db.transaction().execute(async (trx) => {
    if (input.clientMessageId) {
      // Serialise sends that share an idempotency key, so a retry racing the original finds it.
      const key = `${owner.workspaceId}\u001f${owner.userId}\u001f${input.clientMessageId}`;
      await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
      const earlier = await trx
        .selectFrom('messages')
        .innerJoin('threads', 'threads.id', 'messages.thread_id')
        .innerJoin('runs', 'runs.user_message_id', 'messages.id')
        .innerJoin('events', (join) =>
          join
            .onRef('events.thread_id', '=', 'messages.thread_id')
            .onRef('events.run_id', '=', 'runs.id')
            .on('events.type', '=', 'message_created'),
        )
        .select(['messages.id as messageId', 'messages.thread_id as threadId', 'runs.id as runId', 'events.seq as fromSeq'])
        .where('messages.client_message_id', '=', input.clientMessageId)
        .where('threads.workspace_id', '=', owner.workspaceId)
        .where('threads.user_id', '=', owner.userId)
        .$if(input.threadId !== undefined, (q) => q.where('messages.thread_id', '=', input.threadId!))
        .executeTakeFirst();
      if (earlier) return { ...earlier, deduplicated: true, cancelledEvents: [], interruptRunIds: [] };
    }

    let threadId = input.threadId;
    const cancelledEvents: StoredEvent[] = [];
    const interruptRunIds: string[] = [];
    if (threadId) {
      // The thread's row lock serialises sends (and claims) on it, so the busy check below holds.
      const thread = await trx
        .selectFrom('threads')
        .select(['id', 'agent_id'])
        .where('id', '=', threadId)
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', owner.userId)
        .forUpdate()
        .executeTakeFirst();
      if (!thread) throw new TurnRejected('not_found', `Thread ${threadId} was not found.`);
      if (input.agentId && input.agentId !== thread.agent_id) {
        throw new TurnRejected('conflict', `Thread ${threadId} is bound to agent ${thread.agent_id}.`);
      }
      const active = await trx
        .selectFrom('runs')
        .select(['id', 'status'])
        .where('thread_id', '=', threadId)
        .where('status', 'in', ['queued', 'running'])
        .orderBy('created_at')
        .execute();
      if (active.length > 0) {
        const agent = await trx.selectFrom('agents').select('busy_policy').where('id', '=', thread.agent_id).executeTakeFirstOrThrow();
        const policy = input.onBusy ?? agent.busy_policy;
        if (policy === 'reject') {
          throw new TurnRejected('thread_busy', `A run is already active on thread ${threadId}; send again when it completes, or use on_busy "enqueue" or "interrupt".`);
        }
        if (policy === 'interrupt') {
          for (const run of active) {
            const cancelled = run.status === 'queued' ? await cancelQueuedRunIn(trx, run.id) : undefined;
            if (cancelled) cancelledEvents.push(cancelled);
            else interruptRunIds.push(run.id);
          }
        }
      }
    } else {
      const agentId = input.agentId ?? DEFAULT_AGENT_ID;
      const agent = await findUsableAgent(trx, agentId, owner.workspaceId);
      if (!agent) throw new TurnRejected('not_found', `Agent ${agentId} was not found.`);
      threadId = newId('t');
      await trx
        .insertInto('threads')
        .values({
          id: threadId,
          workspace_id: owner.workspaceId,
          user_id: owner.userId,
          agent_id: agent.id,
          title: input.content.slice(0, 80),
          archived_at: null,
        })
        .execute();
    }
    const thread = await trx.selectFrom('threads').select('agent_id').where('id', '=', threadId).executeTakeFirstOrThrow();

    if (input.maxActiveRuns) {
      // Serialise the user's sends from here to commit, so two racing sends cannot both pass the
      // count. Taken after the thread's row lock (as everywhere), so the locks never deadlock;
      // counted after an `interrupt` cancelled the thread's queued runs.
      const key = `active-runs\u001f${owner.workspaceId}\u001f${owner.userId}`;
      await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
      const { active } = await trx
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<string>().as('active'))
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', owner.userId)
        .where('status', 'in', ['queued', 'running'])
        .executeTakeFirstOrThrow();
      if (Number(active) >= input.maxActiveRuns) {
        throw new TurnRejected('rate_limited', `Too many active runs: at most ${input.maxActiveRuns} queued or running per user.`);
      }
    }

    const messageId = newId('m');
    const runId = newId('run');
    await trx
      .insertInto('messages')
      .values({
        id: messageId,
        thread_id: threadId,
        run_id: runId,
        role: 'user',
        content: input.content,
        tool_calls: null,
        tool_call_id: null,
        client_message_id: input.clientMessageId ?? null,
      })
      .execute();
    const message = await trx.selectFrom('messages').select('created_at').where('id', '=', messageId).executeTakeFirstOrThrow();
    await trx
      .insertInto('runs')
      .values({
        id: runId,
        thread_id: threadId,
        workspace_id: owner.workspaceId,
        user_id: owner.userId,
        agent_id: thread.agent_id,
        status: 'queued',
        user_message_id: messageId,
        assistant_message_id: null,
        error: null,
        usage: null,
        started_at: null,
        finished_at: null,
      })
      .execute();
    const event = await appendEvent(trx, threadId, {
      type: 'message_created',
      run_id: runId,
      payload: {
        message: { id: messageId, role: 'user', content: input.content, run_id: runId, created_at: message.created_at.toISOString() },
      },
    });
    return { threadId, messageId, runId, fromSeq: event.seq, deduplicated: false, event, cancelledEvents, interruptRunIds };
  });
}
