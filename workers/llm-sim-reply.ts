/**
 * The simulator's answer on the wire: a reply plan (llm-sim-script.ts) written as a Chat
 * Completions JSON body or as its SSE stream of chunks, word by word with the plan's delays, cut
 * half-way for [[fault:cut]], and OpenAI-shaped error bodies.
 */
import type http from 'node:http';
import type { ReplyPlan, SimToolCall } from './llm-sim-script.js';

export function errorBody(message: string, type: string, code: string | null) {
  return { error: { message, type, param: null, code } };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function write(res: http.ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve();
    res.write(data, () => resolve());
  });
}

export type Reply = Exclude<ReplyPlan, { kind: 'hang' } | { kind: 'error' }>;

function toolCallsMessage(calls: SimToolCall[]) {
  return calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

export async function jsonReply(res: http.ServerResponse, plan: Reply, id: string, model: string, headers: Record<string, string>, signal: AbortSignal) {
  const steps = plan.kind === 'text' ? plan.pieces.length : plan.pieces.length + plan.calls.length;
  await sleep(plan.timing.firstTokenDelayMs + plan.timing.tokenDelayMs * Math.max(0, steps - 1), signal);
  if (signal.aborted) return;
  const message =
    plan.kind === 'text'
      ? { role: 'assistant', content: plan.text, refusal: null }
      : { role: 'assistant', content: plan.pieces.join('') || null, refusal: null, tool_calls: toolCallsMessage(plan.calls) };
  const body = {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    system_fingerprint: 'fp_llmsim',
    choices: [{ index: 0, message, logprobs: null, finish_reason: plan.kind === 'text' ? 'stop' : 'tool_calls' }],
    usage: plan.usage,
  };
  if (!plan.cut) return sendJson(res, 200, body, headers);
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', ...headers });
  await write(res, text.slice(0, Math.floor(text.length / 2)));
  res.destroy();
}

export async function streamReply(res: http.ServerResponse, plan: Reply, id: string, model: string, body: any, headers: Record<string, string>, signal: AbortSignal) {
  const includeUsage = body.stream_options?.include_usage === true;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: object, finish: string | null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    system_fingerprint: 'fp_llmsim',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });

  const events: object[] = [];
  if (plan.kind === 'text') {
    events.push(chunk({ role: 'assistant', content: '', refusal: null }, null));
    for (const p of plan.pieces) events.push(chunk({ content: p }, null));
  } else {
    events.push(chunk({ role: 'assistant', content: plan.pieces.length > 0 ? '' : null, refusal: null }, null));
    for (const p of plan.pieces) events.push(chunk({ content: p }, null));
    plan.calls.forEach((c, index) => {
      events.push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, null));
      const size = Math.max(1, Math.min(8, Math.ceil(c.arguments.length / 3)));
      for (let i = 0; i < c.arguments.length; i += size) {
        events.push(chunk({ tool_calls: [{ index, function: { arguments: c.arguments.slice(i, i + size) } }] }, null));
      }
    });
  }
  events.push(chunk({}, plan.kind === 'text' ? 'stop' : 'tool_calls'));
  if (includeUsage) {
    events.push({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_llmsim', choices: [], usage: plan.usage });
  }

  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...headers });
  res.flushHeaders();
  const cutAt = plan.cut || plan.failMidStream ? Math.max(1, Math.floor(events.length / 2)) : Infinity;
  await sleep(plan.timing.firstTokenDelayMs, signal);
  for (let i = 0; i < events.length; i++) {
    if (signal.aborted) return;
    if (i >= cutAt && plan.failMidStream) {
      const error = { message: 'The server had an error while processing your request (simulated by [[fault:midstream]]).', type: 'server_error', param: null, code: null };
      await write(res, `data: ${JSON.stringify({ error })}\n\n`);
      res.end();
      return;
    }
    if (i >= cutAt) {
      res.destroy();
      return;
    }
    if (i > 0) await sleep(plan.timing.tokenDelayMs, signal);
    if (signal.aborted) return;
    await write(res, `data: ${JSON.stringify(events[i])}\n\n`);
  }
  await write(res, 'data: [DONE]\n\n');
  res.end();
}
