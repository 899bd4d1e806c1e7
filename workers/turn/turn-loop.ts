/**
 * The turn loop: model steps until one answers without tool calls, each step's tool calls run
 * between them, then the run's last write (the answer, agent_completed and the outcome, in one).
 * It goes on from what the claim read from the store, so a run parked before a tool call
 * (tool-gate.ts) is continued by a later job exactly where it stopped: the pending calls, the
 * answer's text and the usage so far all come from the store.
 */
import type { Logger } from 'pino';
import { FencedError, ThreadGoneError } from '../../db/events.repository.js';
import type { ClientToolDef, RunOutcome } from '../../db/schema.js';
import type { RunErrorCode } from '../../protocol/codes.js';
import type { Usage } from '../../protocol/frames.js';
import { isConnectionError } from '../../errors/backing-services.js';
import type { RunHandle } from '../active-runs.js';
import { buildPrompt, DEFAULT_CONTEXT_TOKENS } from '../context.js';
import { DeltaCoalescer } from '../delta-coalescer.js';
import { RunEmitter } from '../run-emitter.js';
import type { TurnStart } from './claim.js';
import type { ProcessorDeps } from './deps.js';
import { modelStep, type ChatTool } from './model-step.js';
import { classify, Released, RunFailure } from './outcome.js';
import { readStoredTurn } from './stored-turn.js';
import { runToolRound, type RoundScope } from './tool-round.js';

/**
 * The tools offered to the model: the agent's that this worker has, then the ones the client
 * offered for the run (a client tool named like one of the agent's is left out: the agent's wins).
 */
function offeredTools(deps: ProcessorDeps, agent: TurnStart['agent'], offered: ClientToolDef[]): { tools?: ChatTool[]; clientTools: Set<string> } {
  const names = agent.tools.filter((name) => deps.tools.get(name));
  const own: ChatTool[] = names.length > 0 ? deps.tools.openaiTools(names) : [];
  const client = offered.filter((tool) => !names.includes(tool.name));
  const tools = [
    ...own,
    ...client.map((tool): ChatTool => ({
      type: 'function',
      function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters: tool.parameters },
    })),
  ];
  return { tools: tools.length > 0 ? tools : undefined, clientTools: new Set(client.map((tool) => tool.name)) };
}

/** How the attempt ended: the run finished (and the thread's next queued run its last write found), or it parked. */
export type TurnEnd = { status: RunOutcome['status']; next: { runId?: string } } | { status: 'parked' };

export async function runTurn(deps: ProcessorDeps, start: TurnStart, handle: RunHandle, signal: AbortSignal, log: Logger): Promise<TurnEnd> {
  const { agent, fence, messageId } = start;
  const cancelled = handle.cancel.signal;
  const emitter = new RunEmitter(deps.db, start.threadId, fence, log, {
    afterSeq: start.afterSeq,
    retryWindowMs: deps.writeRetryMs,
    events: deps.events,
  });
  const text = new DeltaCoalescer(emitter, messageId);
  if (start.resumed) text.continueFrom(start.resumed.text);
  const usage: Usage = {
    prompt_tokens: start.resumed?.usage.prompt_tokens ?? 0,
    completion_tokens: start.resumed?.usage.completion_tokens ?? 0,
    total_tokens: 0,
  };
  let outcome: RunOutcome;
  // Stored by the claim: agent_started and agent_thinking, or for a takeover from an attempt that
  // died (which sent agent_started) an agent_thinking that names the new message id, where
  // clients restart the streamed text (protocol: reset). Published now, before anything after them.
  await emitter.opened(start.opened);
  try {
    const stored = readStoredTurn(start.messages, start.runId, start.resumed !== undefined);
    const prompt = buildPrompt(agent, stored.history, {
      budgetTokens: deps.contextTokens ?? DEFAULT_CONTEXT_TOKENS,
      runId: start.runId,
    });
    const { tools, clientTools } = offeredTools(deps, agent, start.clientTools);
    const scope: RoundScope = { deps, start, emitter, prompt, signal, usage, clientTools, log };
    if (stored.pending && (await runToolRound(scope, { ...stored.pending, stored: true })) === 'parked') return { status: 'parked' };
    for (let iteration = stored.steps; ; iteration++) {
      const step = await modelStep(deps, agent, prompt, tools, text, signal);
      usage.prompt_tokens += step.usage?.prompt_tokens ?? 0;
      usage.completion_tokens += step.usage?.completion_tokens ?? 0;
      if (step.toolCalls.length === 0) break;
      if (iteration + 1 >= agent.max_tool_iterations) {
        throw new RunFailure('tool_iterations_exceeded', `The model asked for tools more than ${agent.max_tool_iterations} times.`);
      }
      await text.flush();
      if ((await runToolRound(scope, { calls: step.toolCalls, stored: false })) === 'parked') return { status: 'parked' };
    }
    // The answer's deltas written so far have returned (a failed one fails the turn here, as it
    // would have mid-stream); the rest goes with the last write.
    await text.settle();
    outcome = { status: 'completed', usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } };
  } catch (error) {
    // No delta of this attempt is still in flight or still to be cut, whichever way the turn ends.
    await text.settle().catch(() => undefined);
    if (error instanceof FencedError || error instanceof ThreadGoneError) throw error;
    if (handle.stop.signal.aborted && handle.handBack && !cancelled.aborted) throw new Released();
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
