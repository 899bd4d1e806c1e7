/**
 * Checks of AG-UI streams with @ag-ui's own validators (never a copy of their formats): every
 * event against `EventSchema` with no top-level key outside its type's schema, each run through
 * `verifyEvents`, and the raw events of `POST /v1/agui` as @ag-ui/client parses them.
 */
import * as assert from 'uvu/assert';
import { lastValueFrom, from, toArray } from 'rxjs';
import type { BaseEvent, Message, RunAgentInput } from '@ag-ui/core';
import { EventSchema } from '@ag-ui/core/schemas';
import { runHttpRequest, transformHttpEventStream, verifyEvents } from '@ag-ui/client';
import type { Kysely } from 'kysely';
import { listThreadMessages } from '../../db/messages.repository.js';
import type { Database } from '../../db/schema.js';
import { within } from './wait.js';

const shapes = new Map<string, Set<string>>(
  EventSchema.options.map((option) => [String(option.shape.type.value), new Set(Object.keys(option.shape))]),
);

/** Every event validates against EventSchema and has no top-level key its type's schema lacks. */
export function checkEvents(events: readonly object[]): void {
  for (const event of events) {
    const parsed = EventSchema.safeParse(event);
    assert.ok(parsed.success, `not an AG-UI event: ${JSON.stringify(event).slice(0, 300)}: ${parsed.error?.message}`);
    const shape = shapes.get((event as { type: string }).type)!;
    const extra = Object.keys(event).filter((key) => !shape.has(key));
    assert.equal(extra, [], `top-level keys outside the schema of ${(event as { type: string }).type}`);
  }
}

/** Resolves when verifyEvents passes the stream; rejects with its complaint. */
export async function verified(events: readonly object[]): Promise<void> {
  await lastValueFrom(from(events as BaseEvent[]).pipe(verifyEvents(false), toArray()));
}

/** The raw events of one POST /v1/agui, parsed by @ag-ui/client's SSE reader (before any of its clean-up). */
export async function postRun(base: string, token: string, input: Partial<RunAgentInput>, timeoutMs = 20_000): Promise<BaseEvent[]> {
  const body = JSON.stringify({ tools: [], context: [], ...input });
  const events$ = transformHttpEventStream(
    runHttpRequest(() =>
      fetch(`${base}/v1/agui`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      }),
    ),
  );
  return within(lastValueFrom(events$.pipe(toArray())), timeoutMs, 'the AG-UI response');
}

/**
 * Messages to compare: without the metadata AG-UI clients fold into them (each event's seq and
 * part), tool arguments as the JSON they hold (events carry them decoded, rows as the model wrote them).
 */
export function comparable(messages: readonly Message[]): Message[] {
  return messages.map((message) => {
    const { metadata: _dropped, ...rest } = message as Message & { metadata?: unknown };
    if (rest.role === 'assistant' && rest.toolCalls) {
      const toolCalls = rest.toolCalls.map(({ metadata: _m, ...call }) => ({ ...call, function: { ...call.function, arguments: json(call.function.arguments) } }));
      return { ...rest, toolCalls } as Message;
    }
    return rest as Message;
  });
}

function json(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

/**
 * The thread's stored messages as AG-UI messages, built from the rows (not from events): per run,
 * its user message (under its client_message_id when it has one), one assistant message under the
 * run's id with the answer's text and every tool call the run made, then the results.
 */
export async function storedAsAgui(db: Kysely<Database>, threadId: string): Promise<Message[]> {
  const rows = await listThreadMessages(db, threadId);
  const out: Message[] = [];
  for (const runId of [...new Set(rows.map((r) => r.run_id))]) {
    const of = rows.filter((r) => r.run_id === runId);
    for (const user of of.filter((r) => r.role === 'user')) out.push({ id: user.client_message_id ?? user.id, role: 'user', content: user.content });
    const text = of.filter((r) => r.role === 'assistant' && !r.tool_calls).at(-1)?.content ?? '';
    const calls = of.flatMap((r) => r.tool_calls ?? []);
    if (text !== '' || calls.length > 0) {
      out.push({
        id: runId!,
        role: 'assistant',
        ...(text !== '' ? { content: text } : {}),
        ...(calls.length > 0 ? { toolCalls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: c.function })) } : {}),
      });
    }
    for (const tool of of.filter((r) => r.role === 'tool')) {
      out.push({ id: `${tool.tool_call_id}:result`, role: 'tool', toolCallId: tool.tool_call_id!, content: tool.content });
    }
  }
  return out;
}
