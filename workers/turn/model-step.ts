/**
 * One model step: a streamed Chat Completions call through the openai SDK, behind the circuit
 * breaker, read as it arrives (model-stream.ts) into text (handed to the coalescer, which writes message_delta
 * events) and tool calls (assembled from their deltas by index).
 */
import type OpenAI from 'openai';
import type { Agent, ToolCallRecord } from '../../db/schema.js';
import { RunErrorCodes } from '../../protocol/codes.js';
import type { DeltaCoalescer } from '../delta-coalescer.js';
import { wellFormed } from '../text.js';
import type { ProcessorDeps } from './deps.js';
import { readChatStream } from '../model-stream.js';
import { isProviderFailure, RunFailure } from './outcome.js';

export type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;
export type ChatTool = OpenAI.Chat.Completions.ChatCompletionTool;

export interface Step {
  /** The tool calls the model asked for (none: the step is the answer). */
  toolCalls: ToolCallRecord[];
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/**
 * One model call through the circuit breaker: refused at once (llm_unavailable) while the breaker
 * is open; otherwise its outcome is reported to the breaker.
 */
export async function modelStep(
  deps: ProcessorDeps,
  agent: Agent,
  prompt: ChatMessage[],
  tools: ChatTool[] | undefined,
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

/** One streamed model call: text goes to the coalescer, tool calls are assembled by index. */
async function streamModel(
  deps: ProcessorDeps,
  agent: Agent,
  prompt: ChatMessage[],
  tools: ChatTool[] | undefined,
  text: DeltaCoalescer,
  signal: AbortSignal,
): Promise<Step> {
  const response = await deps.llm.chat.completions
    .create(
      {
        model: agent.model ?? deps.model,
        messages: prompt,
        stream: true,
        stream_options: { include_usage: true },
        ...(tools ? { tools } : {}),
        ...(agent.temperature !== null ? { temperature: agent.temperature } : {}),
      },
      { signal },
    )
    .asResponse();
  const calls: ToolCallRecord[] = [];
  let usage: Step['usage'];
  try {
    await readChatStream(response, (chunk) => {
      if (chunk.usage) usage = chunk.usage;
      const delta = chunk.choices[0]?.delta;
      if (!delta) return;
      if (delta.content) text.push(delta.content);
      for (const part of delta.tool_calls ?? []) {
        const call = (calls[part.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (part.id) call.id = part.id;
        if (part.function?.name) call.function.name += part.function.name;
        if (part.function?.arguments) call.function.arguments += part.function.arguments;
      }
    });
  } catch (error) {
    // Aborted mid-answer (a cancel, or shutdown): said below, as the signal's reason.
    if (!signal.aborted) throw error;
  }
  // A cancel mid-stream must not look like a short, completed answer.
  signal.throwIfAborted();
  // Stored as they came (jsonb): made well-formed first, a lone surrogate would fail the write.
  const toolCalls = calls.filter(Boolean).map((call) => ({
    ...call,
    id: wellFormed(call.id),
    function: { name: wellFormed(call.function.name), arguments: wellFormed(call.function.arguments) },
  }));
  return { toolCalls, usage };
}
