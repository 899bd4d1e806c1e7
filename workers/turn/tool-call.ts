/**
 * One tool call between its two events, tool_executing and tool_completed: arguments decoded and
 * checked for text the store can keep, the tool run through the registry (which validates the
 * arguments against the tool's schema) under a deadline, and every failure made the call's result.
 */
import type { RunMessage } from '../../db/events.repository.js';
import { newId } from '../../db/ids.js';
import type { ToolCallRecord } from '../../db/schema.js';
import { findUnstorable } from '../../protocol/validate.js';
import { anySignal } from '../any-signal.js';
import type { RunEmitter } from '../run-emitter.js';
import { wellFormed } from '../text.js';
import { ToolError } from '../tools/registry.js';
import type { ProcessorDeps } from './deps.js';

/**
 * The call's arguments as clients are shown them: decoded JSON, or the raw text when it is not
 * JSON or decodes to text Postgres cannot store (a lone surrogate such as "\ud800"; `unfit` says
 * why, and the call is answered with an error result).
 */
export function shownArguments(call: ToolCallRecord): { args: unknown; unfit: string | null } {
  let args: unknown = call.function.arguments;
  try {
    args = JSON.parse(call.function.arguments || '{}');
  } catch {
    // Malformed arguments are shown as sent; the registry reports them to the model.
  }
  const unfit = findUnstorable(args, 'arguments');
  return { args: unfit ? call.function.arguments : args, unfit };
}

/**
 * Runs one tool call between its two events. A tool's failure is its result, not the run's; so is
 * a tool still running after `toolTimeoutMs` (its signal aborts, and the turn stops waiting for it
 * even if it ignores the signal). With `answer` the tool does not run: that is its (error) result.
 * With `refused` the call never started (denied, expired): only its tool_completed is stored.
 */
export async function runTool(
  deps: ProcessorDeps,
  emitter: RunEmitter,
  call: ToolCallRecord,
  signal: AbortSignal,
  options: {
    /** Stored with tool_executing: the assistant row that asked for this step's calls (first call only). */
    calls?: RunMessage;
    /** The call's result as the tool gate gave it: the tool is not run. */
    answer?: string;
    /** The call was refused before it started: its (error) result, with no tool_executing. */
    refused?: string;
  } = {},
): Promise<string> {
  // A refusal of a call whose step is not stored yet (cannot happen after a park) goes the long
  // way: tool_executing stores the step's assistant message.
  if (options.refused !== undefined && !options.calls) {
    const result = wellFormed(options.refused);
    await emitter.emit(
      'tool_completed',
      { tool_call_id: call.id, name: call.function.name, result, is_error: true, duration_ms: 0 },
      { id: newId('m'), role: 'tool', content: result, tool_call_id: call.id },
    );
    return result;
  }
  // Arguments that decode to text Postgres cannot store are answered with an error result: the run goes on.
  const { args, unfit } = shownArguments(call);
  await emitter.emit('tool_executing', { tool_call_id: call.id, name: call.function.name, arguments: args }, options.calls);
  const started = performance.now();
  const answer = unfit ? `Error: the tool's ${unfit}; call it again with valid text.` : options.answer ?? options.refused;
  if (answer !== undefined) {
    const result = wellFormed(answer);
    await emitter.emit(
      'tool_completed',
      { tool_call_id: call.id, name: call.function.name, result, is_error: true, duration_ms: 0 },
      { id: newId('m'), role: 'tool', content: result, tool_call_id: call.id },
    );
    return result;
  }
  let result: string;
  let isError = false;
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
