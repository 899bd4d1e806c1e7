/**
 * Builds the prompt for a turn from the thread's stored messages, in the OpenAI chat format:
 * system prompt, then user / assistant (with tool_calls) / tool messages in order.
 */
import type OpenAI from 'openai';
import type { Agent, Message } from '../db/schema.js';

type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

export function buildPrompt(agent: Agent, history: Message[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (agent.system_prompt) messages.push({ role: 'system', content: agent.system_prompt });
  for (const m of history) {
    switch (m.role) {
      case 'user':
        messages.push({ role: 'user', content: m.content });
        break;
      case 'assistant':
        if (m.tool_calls && m.tool_calls.length > 0) {
          messages.push({ role: 'assistant', content: m.content || null, tool_calls: m.tool_calls });
        } else if (m.content) {
          messages.push({ role: 'assistant', content: m.content });
        }
        break;
      case 'tool':
        messages.push({ role: 'tool', tool_call_id: m.tool_call_id ?? '', content: m.content });
        break;
      case 'system':
        messages.push({ role: 'system', content: m.content });
        break;
    }
  }
  return messages;
}
