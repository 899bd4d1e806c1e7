/**
 * Runs one turn: claim the run, build the prompt, stream the model's answer through the openai
 * SDK, run the tools it asks for, and write every step as an event. The same function runs under
 * BullMQ or in process.
 */
import type OpenAI from 'openai';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { claimRun, nextQueuedRun, type Claim, type RunOutcome } from '../db/runs.repository.js';
import { FencedError, lastRunEvent, ThreadGoneError, type RunMessage, type StoredEvent, type WriteFence } from '../db/events.repository.js';
import type { Agent, Database, Message, ToolCallRecord } from '../db/schema.js';
import { newId } from '../db/ids.js';
import type { RunErrorCode } from '../protocol/codes.js';
import { RunErrorCodes } from '../protocol/codes.js';
import type { Usage } from '../protocol/frames.js';
import { enqueueTakeover, type TurnContext, type TurnJob, type TurnProcessor, type TurnQueue } from '../queue/turn-queue.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { isConnectionError } from '../errors/backing-services.js';
import { buildPrompt, DEFAULT_CONTEXT_TOKENS } from './context.js';
import { DeltaCoalescer, RunEmitter } from './run-emitter.js';
import type { EventLog } from '../events/event-log.js';
import { ToolError, type ToolRegistry } from './tools/registry.js';
import { findUnstorable } from '../protocol/validate.js';
import { wellFormed } from './text.js';
import { metrics, type TurnMetricOutcome } from '../metrics/index.js';
import { anySignal } from './any-signal.js';

export interface TurnDeps {
  db: Kysely<Database>;
  broker: Broker;
  /** The process's event log: every event of a turn is appended (and published) through it. */
  events: EventLog;
  queue: TurnQueue;
  llm: OpenAI;
  model: string;
  /** Token budget of the history sent with each turn. @defaultValue DEFAULT_CONTEXT_TOKENS */
  contextTokens?: number;
  tools: ToolRegistry;
  log: Logger;
  /** The runs this worker holds, by id (run.cancel reaches every worker; heartbeats; shutdown). */
  activeRuns: Map<string, RunHandle>;
  /** How long a run's writes are retried while the database is unreachable. @defaultValue 30000 */
  writeRetryMs?: number;
  /** Deadline of one tool call; a tool still running then ends as an error result. @defaultValue 10000 */
  toolTimeoutMs?: number;
  /** Consecutive provider failures that open the LLM circuit breaker. @defaultValue 5 */
  breakerFailures?: number;
  /** How long an open breaker fails turns fast before one trial call. @defaultValue 30000 */
  breakerCooldownMs?: number;
}

const DEFAULT_TOOL_TIMEOUT_MS = 10_000;

/** A run in flight in this worker. */
export interface RunHandle {
  fence: WriteFence;
  /** Aborted by the user (run.cancel, an interrupting message): the run ends `cancelled`. */
  cancel: AbortController;
  /**
   * Aborted when this worker shuts down past its grace period. With `release`, the run is handed
   * back for another worker to take over (no agent_completed is written); without, it ends
   * `failed` with `worker_lost`.
   */
  stop: AbortController;
  release: boolean;
}

/** This attempt handed its run back on shutdown; a takeover job continues it elsewhere. */
class Released extends Error {
  constructor() {
    super('run released on shutdown');
    this.name = 'Released';
  }
}

/** TurnDeps plus what the processor builds once: one breaker per processor, so per worker process. */
interface ProcessorDeps extends TurnDeps {
  breaker: CircuitBreaker;
  toolTimeoutMs: number;
}

/** A run failure with the code clients see in `agent_completed.error`. */
export class RunFailure extends Error {
  constructor(readonly code: RunErrorCode, message: string) {
    super(message);
    this.name = 'RunFailure';
  }
}

export function createTurnProcessor(turnDeps: TurnDeps): TurnProcessor {
  const deps: ProcessorDeps = {
    ...turnDeps,
    breaker: new CircuitBreaker({ failureThreshold: turnDeps.breakerFailures, cooldownMs: turnDeps.breakerCooldownMs }),
    toolTimeoutMs: turnDeps.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
  };
  return async (job, ctx) => {
    const claim = await claimRun(deps.db, job.runId, {
      takeover: ctx.takeover || job.takeover !== undefined,
      // A re-delivered job replaces the attempt its earlier delivery claimed, never a newer one.
      fromAttempt: job.takeover?.fromAttempt ?? (ctx.takeover ? ctx.claimedAttempt : undefined),
      staleMs: job.takeover?.staleMs,
      // The claim also stores the opening events and reads the context: one round trip.
      start: true,
    });
    if (claim.kind !== 'claimed') {
      deps.log.debug({ run_id: job.runId, claim: claim.kind }, 'run not started');
      await afterUnclaimed(deps, job, ctx, claim);
      return;
    }
    const { run, thread, agent, fence } = claim;
    // Not awaited: the turn need not wait for it, and a re-delivery that finds nothing recorded
    // takes over as before.
    void ctx.recordAttempt(fence.attempt).catch((error: unknown) => deps.log.warn({ err: error, run_id: run.id }, 'claimed attempt not recorded on the job'));
    if (ctx.enqueuedAt !== undefined) metrics.queueWait((Date.now() - ctx.enqueuedAt) / 1000);
    const claimedAt = performance.now();
    let ended: TurnMetricOutcome = 'error';
    const log = deps.log.child({ run_id: run.id, thread_id: thread.id, attempt: fence.attempt });
    const handle: RunHandle = { fence, cancel: new AbortController(), stop: new AbortController(), release: false };
    deps.activeRuns.set(run.id, handle);
    const signal = anySignal([ctx.signal, handle.cancel.signal, handle.stop.signal]);
    let released = false;
    /** Set once the run's last write returned: the thread's next queued run (undefined: none). */
    let next: { runId?: string } | undefined;
    try {
      const result = await runTurn(deps, {
        job, agent, fence, handle, signal, log,
        messageId: run.assistant_message_id!,
        restarted: claim.restarted,
        afterSeq: thread.last_seq,
        opened: claim.opened ?? [],
        messages: claim.messages ?? [],
      });
      ended = result.status;
      next = result.next;
    } catch (error) {
      if (error instanceof Released) {
        ended = 'released';
        released = true;
        await handBack(deps, job, fence, log);
      } else if (error instanceof FencedError) {
        ended = 'fenced';
        log.warn('run was taken over by another attempt; this attempt stopped writing');
      } else if (error instanceof ThreadGoneError) {
        ended = 'cancelled';
        log.info('thread was deleted during the run; the run ended with it');
      } else {
        throw error;
      }
    } finally {
      metrics.turnEnded(ended, (performance.now() - claimedAt) / 1000);
      deps.activeRuns.delete(run.id);
      // A released run still holds its thread; the takeover wakes the next turn when it ends.
      if (!released) await wakeNext(deps, thread.id, log, next);
    }
  };
}

/**
 * A job that found nothing to start. A re-delivery of a run that has finished meanwhile (its last
 * write committed, but the answer was lost and the retries ran out) publishes the run's last event
 * again: otherwise live followers would never hear the end of the turn. And a run that ended (a
 * queued run cancelled, say) may leave the thread's next queued run waiting for a wake-up: it gets
 * one.
 */
async function afterUnclaimed(deps: TurnDeps, job: TurnJob, ctx: TurnContext, claim: Exclude<Claim, { kind: 'claimed' }>): Promise<void> {
  if (claim.kind !== 'gone' || !claim.status || claim.status === 'queued' || claim.status === 'running') return;
  try {
    if (ctx.takeover) {
      const last = await lastRunEvent(deps.db, job.threadId, job.runId);
      if (last) await deps.events.publish(job.threadId, [last]);
    }
    await wakeNext(deps, job.threadId, deps.log);
  } catch (error) {
    deps.log.warn({ err: error, run_id: job.runId }, 'after a finished run: republish or wake-up failed; the sweeper will wake');
  }
}

/** Queues the takeover of a run this worker released; if that fails the heartbeat sweeper will. */
async function handBack(deps: TurnDeps, job: TurnJob, fence: WriteFence, log: Logger): Promise<void> {
  try {
    await enqueueTakeover(deps.queue, job, fence.attempt);
    log.info('run released on shutdown; another worker takes it over');
  } catch (error) {
    log.warn({ err: error }, 'run released on shutdown but its takeover could not be queued; the sweeper will');
  }
}

interface TurnState {
  job: TurnJob;
  agent: Agent;
  fence: WriteFence;
  handle: RunHandle;
  messageId: string;
  /** Aborted on cancel, interrupt or worker shutdown. */
  signal: AbortSignal;
  /** This attempt took the run over from one that died. */
  restarted: boolean;
  /** The thread's last seq when the run was claimed (before its opening events). */
  afterSeq: number;
  /** The opening events the claim stored (agent_started and agent_thinking, or the restart's agent_thinking). */
  opened: StoredEvent[];
  /** The thread's messages as the claim read them, oldest first: the context. */
  messages: Message[];
  log: Logger;
}

/** Runs the turn to its agent_completed; returns how it ended and the thread's next queued run as the last write found it. */
async function runTurn(deps: ProcessorDeps, turn: TurnState): Promise<{ status: RunOutcome['status']; next: { runId?: string } }> {
  const { job, agent, fence, handle, messageId, signal, log } = turn;
  const cancelled = handle.cancel.signal;
  const emitter = new RunEmitter(deps.db, job.threadId, fence, log, {
    afterSeq: turn.afterSeq,
    retryWindowMs: deps.writeRetryMs,
    events: deps.events,
  });
  const text = new DeltaCoalescer(emitter, messageId);
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  let outcome: RunOutcome;
  // Stored by the claim: agent_started and agent_thinking, or for a takeover from an attempt that
  // died (which sent agent_started) an agent_thinking that names the new message id, where
  // clients restart the streamed text (protocol: reset). Published now, before anything after them.
  await emitter.opened(turn.opened);
  try {
    const prompt = buildPrompt(agent, turn.messages, {
      budgetTokens: deps.contextTokens ?? DEFAULT_CONTEXT_TOKENS,
      runId: job.runId,
    });
    const toolNames = agent.tools.filter((name) => deps.tools.get(name));
    const tools = toolNames.length > 0 ? deps.tools.openaiTools(toolNames) : undefined;
    for (let iteration = 0; ; iteration++) {
      const step = await streamStep(deps, agent, prompt, tools, text, signal);
      usage.prompt_tokens += step.usage?.prompt_tokens ?? 0;
      usage.completion_tokens += step.usage?.completion_tokens ?? 0;
      if (step.toolCalls.length === 0) break;
      if (iteration + 1 >= agent.max_tool_iterations) {
        throw new RunFailure('tool_iterations_exceeded', `The model asked for tools more than ${agent.max_tool_iterations} times.`);
      }
      await text.flush();
      // Text the model wrote alongside tool calls stays in the final message, so the streamed
      // deltas always join to exactly the stored answer. The assistant row with the calls is
      // stored with the first tool_executing, each result with its tool_completed.
      let calls: RunMessage | undefined = { id: newId('m'), role: 'assistant', content: '', tool_calls: step.toolCalls };
      prompt.push({ role: 'assistant', content: null, tool_calls: step.toolCalls });
      for (const call of step.toolCalls) {
        const result = await runTool(deps, emitter, call, signal, calls);
        calls = undefined;
        prompt.push({ role: 'tool', tool_call_id: call.id, content: result });
      }
    }
    outcome = { status: 'completed', usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } };
  } catch (error) {
    if (error instanceof FencedError || error instanceof ThreadGoneError) throw error;
    if (handle.stop.signal.aborted && handle.release && !cancelled.aborted) throw new Released();
    // The database stayed unreachable past the write retries: this attempt cannot record the turn
    // faithfully (a delta may be missing from the log). It gives the run up unfinished; the queue's
    // retry or the heartbeat sweeper takes it over with a fresh attempt and message id.
    if (isConnectionError(error)) throw error;
    outcome = classify(error, signal, cancelled, log);
    if (outcome.status !== 'failed' || usage.prompt_tokens > 0) {
      outcome.usage = { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
    }
  }
  // One write: the text still pending, the answer, agent_completed and the run's outcome.
  const nextRunId = await emitter.complete(
    {
      status: outcome.status,
      message: { id: messageId, role: 'assistant', content: text.text, run_id: fence.runId },
      ...(outcome.usage ? { usage: outcome.usage } : {}),
      ...(outcome.error ? { error: outcome.error as { code: RunErrorCode; message: string } } : {}),
    },
    outcome,
    { message: { id: messageId, role: 'assistant', content: text.text }, before: text.takePending() },
  );
  log.info({ status: outcome.status, usage: outcome.usage }, 'run finished');
  return { status: outcome.status, next: { runId: nextRunId } };
}

interface Step {
  toolCalls: ToolCallRecord[];
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/**
 * One model call through the circuit breaker: refused at once (llm_unavailable) while the breaker
 * is open; otherwise its outcome is reported to the breaker.
 */
async function streamStep(
  deps: ProcessorDeps,
  agent: Agent,
  prompt: OpenAI.Chat.Completions.ChatCompletionMessageParam[],
  tools: OpenAI.Chat.Completions.ChatCompletionTool[] | undefined,
  text: DeltaCoalescer,
  signal: AbortSignal,
): Promise<Step> {
  if (!deps.breaker.tryAcquire()) {
    throw new RunFailure('llm_unavailable', `${RunErrorCodes.llm_unavailable} Retry in about ${Math.ceil(deps.breaker.retryInMs() / 1000)} s.`);
  }
  try {
    const step = await streamModel(deps, agent, prompt, tools, text, signal);
    deps.breaker.success();
    return step;
  } catch (error) {
    if (!signal.aborted && isProviderFailure(error)) deps.breaker.failure();
    else deps.breaker.release();
    throw error;
  }
}

/** What counts against the provider: 5xx/429 (after the SDK's retries), connection errors, timeouts. */
function isProviderFailure(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof APIConnectionError) return true; // includes APIConnectionTimeoutError
  if (error instanceof APIError) return error.status === undefined || error.status === 429 || error.status >= 500;
  return isStreamCut(error);
}

/**
 * A response body that ends before the stream does (the connection dropped mid-answer). undici
 * reports it as a TypeError('terminated') whose cause is the socket error; the SDK passes it on.
 */
function isStreamCut(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'terminated';
}

/** One streamed model call: text goes to the coalescer, tool calls are assembled by index. */
async function streamModel(
  deps: TurnDeps,
  agent: Agent,
  prompt: OpenAI.Chat.Completions.ChatCompletionMessageParam[],
  tools: OpenAI.Chat.Completions.ChatCompletionTool[] | undefined,
  text: DeltaCoalescer,
  signal: AbortSignal,
): Promise<Step> {
  const stream = await deps.llm.chat.completions.create(
    {
      model: agent.model ?? deps.model,
      messages: prompt,
      stream: true,
      stream_options: { include_usage: true },
      ...(tools ? { tools } : {}),
      ...(agent.temperature !== null ? { temperature: agent.temperature } : {}),
    },
    { signal },
  );
  const calls: ToolCallRecord[] = [];
  let usage: Step['usage'];
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices[0]?.delta;
    if (!delta) continue;
    if (delta.content) await text.push(delta.content);
    for (const part of delta.tool_calls ?? []) {
      const call = (calls[part.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (part.id) call.id = part.id;
      if (part.function?.name) call.function.name += part.function.name;
      if (part.function?.arguments) call.function.arguments += part.function.arguments;
    }
  }
  // The SDK's stream iterator ends quietly when its signal aborts (it swallows the AbortError), so
  // a cancel mid-stream would otherwise look like a short, completed answer.
  signal.throwIfAborted();
  // Stored as they came (jsonb): made well-formed first, a lone surrogate would fail the write.
  const toolCalls = calls.filter(Boolean).map((call) => ({
    ...call,
    id: wellFormed(call.id),
    function: { name: wellFormed(call.function.name), arguments: wellFormed(call.function.arguments) },
  }));
  return { toolCalls, usage };
}

/**
 * Runs one tool call between its two events. A tool's failure is its result, not the run's; so is
 * a tool still running after `toolTimeoutMs` (its signal aborts, and the turn stops waiting for it
 * even if it ignores the signal).
 */
async function runTool(
  deps: ProcessorDeps,
  emitter: RunEmitter,
  call: ToolCallRecord,
  signal: AbortSignal,
  /** Stored with tool_executing: the assistant row that asked for this step's calls (first call only). */
  calls?: RunMessage,
): Promise<string> {
  let args: unknown = call.function.arguments;
  try {
    args = JSON.parse(call.function.arguments || '{}');
  } catch {
    // Malformed arguments are shown as sent; the registry reports them to the model.
  }
  // Arguments that decode to text Postgres cannot store (a lone surrogate such as "\ud800") are
  // shown as the raw text, made well-formed, and answered with an error result: the run goes on.
  const unfit = findUnstorable(args, 'arguments');
  if (unfit) args = call.function.arguments;
  await emitter.emit('tool_executing', { tool_call_id: call.id, name: call.function.name, arguments: args }, calls);
  const started = performance.now();
  let result: string;
  let isError = false;
  if (unfit) {
    result = `Error: the tool's ${unfit}; call it again with valid text.`;
    await emitter.emit(
      'tool_completed',
      { tool_call_id: call.id, name: call.function.name, result, is_error: true, duration_ms: 0 },
      { id: newId('m'), role: 'tool', content: result, tool_call_id: call.id },
    );
    return result;
  }
  const deadline = AbortSignal.timeout(deps.toolTimeoutMs);
  const toolSignal = anySignal([signal, deadline]);
  try {
    result = wellFormed(await untilAborted(deps.tools.run(call.function.name, call.function.arguments, { signal: toolSignal }), toolSignal));
  } catch (error) {
    if (signal.aborted) throw error;
    isError = true;
    if (deadline.aborted) {
      result = `Error: the tool did not finish within ${deps.toolTimeoutMs} ms.`;
      deps.log.warn({ tool: call.function.name, timeout_ms: deps.toolTimeoutMs }, 'tool timed out');
    } else {
      result = error instanceof ToolError ? `Error: ${error.message}` : 'Error: the tool failed unexpectedly.';
      if (!(error instanceof ToolError)) deps.log.error({ err: error, tool: call.function.name }, 'tool threw');
    }
  }
  await emitter.emit('tool_completed', {
    tool_call_id: call.id,
    name: call.function.name,
    result,
    is_error: isError,
    duration_ms: Math.round((performance.now() - started) * 100) / 100,
  }, { id: newId('m'), role: 'tool', content: result, tool_call_id: call.id });
  return result;
}

/** `work`, or a rejection with the signal's reason as soon as it aborts (whatever `work` does). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The one place that decides how a failed turn ends. */
function classify(error: unknown, signal: AbortSignal, cancelled: AbortSignal, log: Logger): RunOutcome {
  if (cancelled.aborted) return { status: 'cancelled' };
  // Aborted, but not by the user: this worker is shutting down past its grace period.
  if (signal.aborted || error instanceof APIUserAbortError) {
    return { status: 'failed', error: { code: 'worker_lost', message: 'The worker stopped during this turn; send the message again.' } };
  }
  if (error instanceof RunFailure) return { status: 'failed', error: { code: error.code, message: error.message } };
  if (error instanceof APIConnectionTimeoutError) {
    return { status: 'failed', error: { code: 'llm_timeout', message: RunErrorCodes.llm_timeout } };
  }
  if (error instanceof APIError) {
    log.warn({ status: error.status, err: error }, 'LLM call failed');
    const detail = error.status ? ` (HTTP ${error.status})` : '';
    return { status: 'failed', error: { code: 'llm_error', message: `${RunErrorCodes.llm_error}${detail}` } };
  }
  if (isStreamCut(error)) {
    log.warn({ err: error }, 'LLM stream ended early');
    return { status: 'failed', error: { code: 'llm_error', message: `${RunErrorCodes.llm_error} (the answer stream was cut off)` } };
  }
  log.error({ err: error }, 'turn failed');
  return { status: 'failed', error: { code: 'internal_error', message: RunErrorCodes.internal_error } };
}

/**
 * Starts the thread's next queued turn, if any: the one the run's last write found, else (the run
 * did not get that far) looked up. A lost wake-up is repaired by the sweeper.
 */
async function wakeNext(deps: TurnDeps, threadId: string, log: Logger, found?: { runId?: string }): Promise<void> {
  try {
    const next = found ? found.runId : await nextQueuedRun(deps.db, threadId);
    if (next) await deps.queue.enqueue({ runId: next, threadId }, { wake: true });
  } catch (error) {
    log.warn({ err: error }, 'could not wake the next turn; the sweeper will');
  }
}
