/**
 * The messages an AG-UI client builds from the view's events (./agui.ts), built the same way on the
 * server: the MESSAGES_SNAPSHOT a client joining without a seq gets is the thread's events up to
 * its join, folded as the client would have folded them had it seen them all. So the snapshot and
 * the events after it add up to what a client that saw everything holds. Only what the view emits
 * is folded: RUN_STARTED.input's messages, text messages, tool calls and their results.
 */
import type { AssistantMessage, Message } from '@ag-ui/core';
import { isAgui, type AguiEvent } from './agui-events.js';

export class AguiMessages {
  readonly messages: Message[] = [];

  apply(event: AguiEvent): void {
    const { messages } = this;
    if (isAgui(event, 'RUN_STARTED')) {
      for (const message of event.input?.messages ?? []) if (!this.find(message.id)) messages.push(message);
    } else if (isAgui(event, 'TEXT_MESSAGE_START')) {
      if (!this.find(event.messageId)) messages.push({ id: event.messageId, role: 'assistant', content: '' });
    } else if (isAgui(event, 'TEXT_MESSAGE_CONTENT')) {
      const message = this.find(event.messageId);
      if (message && message.role === 'assistant') message.content = `${message.content ?? ''}${event.delta}`;
    } else if (isAgui(event, 'TOOL_CALL_START')) {
      if (this.owner(event.toolCallId)) return;
      const parent = event.parentMessageId === undefined ? undefined : this.find(event.parentMessageId);
      let target = parent?.role === 'assistant' ? parent : undefined;
      if (!target) {
        target = { id: parent || event.parentMessageId === undefined ? event.toolCallId : event.parentMessageId, role: 'assistant', toolCalls: [] };
        messages.push(target);
      }
      (target.toolCalls ??= []).push({ id: event.toolCallId, type: 'function', function: { name: event.toolCallName, arguments: '' } });
    } else if (isAgui(event, 'TOOL_CALL_ARGS')) {
      const call = this.owner(event.toolCallId)?.toolCalls?.find((c) => c.id === event.toolCallId);
      if (call) call.function.arguments += event.delta;
    } else if (isAgui(event, 'TOOL_CALL_RESULT')) {
      const result: Message = { id: event.messageId, role: 'tool', toolCallId: event.toolCallId, content: event.content };
      const owner = this.owner(event.toolCallId);
      // After the message that made the call and the results already after it, as clients place it.
      let at = owner ? messages.indexOf(owner) + 1 : messages.length;
      while (owner && at < messages.length && messages[at]!.role === 'tool') at++;
      messages.splice(at, 0, result);
    }
  }

  private find(id: string): Message | undefined {
    return this.messages.find((m) => m.id === id);
  }

  /** The assistant message holding the tool call. */
  private owner(toolCallId: string): AssistantMessage | undefined {
    return this.messages.find((m): m is AssistantMessage => m.role === 'assistant' && !!m.toolCalls?.some((c) => c.id === toolCallId));
  }
}
