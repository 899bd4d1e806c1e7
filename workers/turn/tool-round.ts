/**
 * The tool calls of one model step, in the model's order: each runs (tool-call.ts) unless its
 * result is already stored (a resumed step) or the tool gate stops it, which parks the run there
 * (tool-gate.ts). The prompt gets the step's assistant message and each result, as the model
 * expects them for its next step.
 */
import type { Logger } from 'pino';
import type { RunMessage } from '../../db/events.repository.js';
import { newId } from '../../db/ids.js';
import type { ToolCallRecord } from '../../db/schema.js';
import { parkRun, type TurnUsage } from '../../db/turn-state.repository.js';
import type { RunEmitter } from '../run-emitter.js';
import type { TurnStart } from './claim.js';
import type { ProcessorDeps } from './deps.js';
import type { ChatMessage } from './model-step.js';
import { runTool, shownArguments } from './tool-call.js';

export interface RoundScope {
  deps: ProcessorDeps;
  start: TurnStart;
  emitter: RunEmitter;
  /** The prompt of the next model step: the round appends to it. */
  prompt: ChatMessage[];
  signal: AbortSignal;
  /** The model's usage so far, kept by a park. */
  usage: TurnUsage;
  /** Names of the tools the client offered (and the agent does not have): their calls wait for the client. */
  clientTools: ReadonlySet<string>;
  log: Logger;
}

export interface RoundCalls {
  calls: ToolCallRecord[];
  /** The assistant message asking for them is stored already (a resumed step). */
  stored: boolean;
  /** Results stored already, by call id (a resumed step). */
  results?: Map<string, string>;
}

/** Runs the step's calls; 'parked' when the gate stopped one and the run is parked. */
export async function runToolRound(scope: RoundScope, round: RoundCalls): Promise<'ran' | 'parked'> {
  const { deps, start, emitter, prompt, signal } = scope;
  // Text the model wrote alongside tool calls stays in the final message, so the streamed deltas
  // always join to exactly the stored answer. The assistant row with the calls is stored with the
  // first tool_executing (or with the park), each result with its tool_completed.
  let asked: RunMessage | undefined = round.stored ? undefined : { id: newId('m'), role: 'assistant', content: '', tool_calls: round.calls };
  prompt.push({ role: 'assistant', content: null, tool_calls: round.calls });
  for (const call of round.calls) {
    const known = round.results?.get(call.id);
    if (known !== undefined) {
      prompt.push({ role: 'tool', tool_call_id: call.id, content: known });
      continue;
    }
    const clientTool = scope.clientTools.has(call.function.name);
    const verdict = deps.toolGate ? await deps.toolGate({ runId: start.runId, threadId: start.threadId, agent: start.agent, call, clientTool }) : 'run';
    if (verdict === 'stop' || (typeof verdict === 'object' && 'wait' in verdict)) {
      // A cancel that came meanwhile ends the run instead.
      signal.throwIfAborted();
      const wait = verdict === 'stop' ? undefined : {
        kind: verdict.wait.kind, toolCallId: call.id, toolName: call.function.name, arguments: shownArguments(call).args, timeoutS: verdict.wait.timeoutS,
      };
      const request = await parkRun(deps.db, start.threadId, start.fence, { message: asked, usage: scope.usage, wait });
      // Stored with the park: published now, after every earlier event of the run (all stored and published).
      if (request) await deps.events.publish(start.threadId, [request]);
      scope.log.info({ tool: call.function.name, tool_call_id: call.id, waits_for: wait?.kind }, 'run parked before a tool call; a later job resumes it');
      return 'parked';
    }
    const given = typeof verdict !== 'object' ? {} : 'result' in verdict ? { answer: verdict.result } : { refused: verdict.refused };
    const result = await runTool(deps, emitter, call, signal, { calls: asked, ...given });
    asked = undefined;
    prompt.push({ role: 'tool', tool_call_id: call.id, content: result });
  }
  return 'ran';
}
