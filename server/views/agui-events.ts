/**
 * The pieces of the AG-UI view (./agui.ts) its streams share: the event types of @ag-ui/core by
 * name, an event's place in the stream (`metadata`), and the ids the view gives what stored events
 * do not name (a tool result's message, an interrupt).
 */
import type { Event as AguiEvent, TokenUsage } from '@ag-ui/core';
import type { Usage } from '../../protocol/frames.js';

/** An AG-UI event by the name of its type. */
export type ByName = { [E in AguiEvent as `${E['type']}`]: E };
export type AguiEventName = keyof ByName;
export type { AguiEvent };

/**
 * Where an event sits in a stream: its stored event's seq and, when that gave several AG-UI events,
 * its part (0, 1, ...). `prelude` marks the preamble a client joining without a seq gets first.
 */
export interface AguiMeta {
  seq?: number;
  part?: number;
  prelude?: true;
}
export type AguiOut = AguiEvent & { metadata?: AguiMeta };

/** An AG-UI event of type `type`. */
export function aguiEvent<N extends AguiEventName>(type: N, fields: Omit<ByName[N], 'type'>): ByName[N] {
  return { type, ...fields } as unknown as ByName[N];
}

/** Whether `event` is of type `type`. */
export function isAgui<N extends AguiEventName>(event: AguiEvent, type: N): event is ByName[N] {
  return (event.type as string) === type;
}

/** True for the last event of an AG-UI run (RUN_FINISHED or RUN_ERROR). */
export function endsRun(event: AguiEvent): boolean {
  return isAgui(event, 'RUN_FINISHED') || isAgui(event, 'RUN_ERROR');
}

/** Stream position order: is `event` after the position (seq, part)? No part: all of seq was had. */
export function isAfter(meta: AguiMeta | undefined, seq: number, part?: number): boolean {
  if (meta?.seq === undefined) return false;
  if (meta.seq !== seq) return meta.seq > seq;
  return part !== undefined && (meta.part ?? 0) > part;
}

/** The id of the tool message holding a call's result (stored events do not carry the row's id). */
export function resultMessageId(toolCallId: string): string {
  return `${toolCallId}:result`;
}

/** An interrupt's id: the run and the call, which `resume` names back (run ids hold no `:`). */
export function interruptId(runId: string, toolCallId: string): string {
  return `${runId}:${toolCallId}`;
}

/** The run and call an interrupt id names, or undefined when it is not one. */
export function parseInterruptId(id: string): { runId: string; toolCallId: string } | undefined {
  const at = id.indexOf(':');
  if (at <= 0 || at === id.length - 1) return undefined;
  return { runId: id.slice(0, at), toolCallId: id.slice(at + 1) };
}

/** What an approval interrupt expects in `resume[].payload` (all optional: `resolved` approves). */
export const APPROVAL_ANSWER = {
  type: 'object',
  properties: {
    approved: { type: 'boolean', description: 'false denies the call, as a `cancelled` resume does.' },
    reason: { type: 'string', description: 'Told to the model with the decision.' },
  },
};

/** A run's usage as AG-UI's TokenUsage list. */
export function tokenUsage(usage: Usage | undefined): { usage?: TokenUsage[] } {
  if (!usage) return {};
  const totalTokens = usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens;
  return { usage: [{ inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens, totalTokens }] };
}
