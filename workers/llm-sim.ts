/**
 * Deterministic OpenAI-compatible LLM simulator (node:http only).
 *
 * Routes
 *   POST /v1/chat/completions   streaming (SSE) and non-streaming Chat Completions
 *   GET  /v1/models             { object: "list", data: [{ id: "sim-1", ... }] }
 *   anything else               404 OpenAI-shaped error JSON; bad JSON -> 400
 *
 * Replies (decided in llm-sim-script.ts; same request body => same output)
 *   - Default: `replyWords` words: "You said: <first ≤5 words of the last user
 *     message>" followed by filler words picked by a PRNG seeded with a hash of
 *     `messages`, ending with ".". Streamed as one chunk per word.
 *   - Tool calls (only when the LAST message is a `user` message and `tools` are offered,
 *     and tool_choice !== "none"):
 *       /\btime\b/i and `get_current_time` offered      -> get_current_time({})
 *       "calculate <expr>" and `calculator` offered      -> calculator({"expression":"<expr>"})
 *       (both may fire: parallel tool calls, unless parallel_tool_calls === false)
 *       tool_choice {type:"function",function:{name}}    -> forces that tool
 *       tool_choice "required" with no trigger           -> first offered tool with {}
 *     Ids are deterministic: "call_<24 hex of sha256>". Streamed like OpenAI:
 *     delta.tool_calls[{index,id,type:"function",function:{name,arguments:""}}] then
 *     argument fragments in several chunks; finish_reason "tool_calls".
 *   - If the last message is a `tool` message: "The <tool name> tool says <result>."
 *     for each trailing tool result (name from the preceding assistant tool_calls).
 *
 * Directives (anywhere in the most recent `user` message; they are stripped from the echo)
 *   [[words:N]]          reply length in words for this request (1..10000)
 *   [[delay:MS]]         delay between streamed chunks (overrides tokenDelayMs)
 *   [[firstdelay:MS]]    delay before the first chunk (overrides firstTokenDelayMs)
 *   [[tool:NAME ARGS]]   force a call to tool NAME (if offered) with ARGS (raw string,
 *                        default "{}", forwarded verbatim, not validated); repeatable
 *   [[fault:429]]        HTTP 429, headers retry-after: 1 (s) and retry-after-ms, error JSON
 *   [[fault:500]]        HTTP 500 with error JSON
 *   [[fault:cut]]        stream ~half the reply then destroy the socket (no [DONE]);
 *                        non-streaming: half of the JSON body, then destroy
 *   [[fault:hang]]       never answer (until close() or the client aborts)
 *   [[fault:badtool]]    tool call whose arguments are malformed JSON ('{"broken": tru');
 *                        uses the triggered tool, else the first offered tool
 *   [[fault:loop]]       always call the first offered tool with {} (even after tool results)
 *   [[fault:KINDxN]]     count-limited: fault only the first N requests whose most recent
 *                        user message has this exact text, then behave normally
 *                        (per-sim-instance counter; works for every KIND above)
 *   Directives in the most recent user message also apply to follow-up requests
 *   whose last message is a tool result (e.g. loop, cut, 429).
 *
 * Token counts (approximation, ~4 chars per token, min 1 for non-empty text):
 *   prompt_tokens = Σ messages (3 + tokens(content text) + tokens(tool call name+args))
 *                   + tokens(JSON of `tools`)
 *   completion_tokens = tokens(reply text) or Σ tokens(tool name + arguments)
 */
import http from 'node:http';
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { planReply, sha, validateBody, type ReplyPlan, type SimToolCall } from './llm-sim-script.js';

export interface LlmSimOptions {
  host?: string;
  port?: number;
  firstTokenDelayMs?: number;
  tokenDelayMs?: number;
  replyWords?: number;
  /** Value of the retry-after-ms header sent with [[fault:429]] (default 1000; retry-after is ceil(ms/1000) s). */
  retryAfterMs?: number;
  /**
   * Keep every request body in `requests` (tests read them). A simulator that runs for long (the
   * embedded server's, `npm run llm-sim`) turns it off, or its memory grows with every request.
   * @defaultValue true
   */
  recordRequests?: boolean;
}
export interface RecordedRequest { body: any; receivedAt: number }
export interface LlmSim {
  baseURL: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;

function errorBody(message: string, type: string, code: string | null) {
  return { error: { message, type, param: null, code } };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
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

export async function startLlmSim(opts: LlmSimOptions = {}): Promise<LlmSim> {
  const host = opts.host ?? '127.0.0.1';
  const defaults = {
    firstTokenDelayMs: opts.firstTokenDelayMs ?? 0,
    tokenDelayMs: opts.tokenDelayMs ?? 0,
    replyWords: opts.replyWords ?? 12,
  };
  const retryAfterMs = opts.retryAfterMs ?? 1000;
  const requests: RecordedRequest[] = [];
  const faultCounters = new Map<string, number>();
  const open = new Set<http.ServerResponse>();
  const shutdown = new AbortController();
  // One listener per in-flight request, removed when it ends: many at once is expected, not a leak.
  setMaxListeners(0, shutdown.signal);
  let closing: Promise<void> | undefined;

  const server = http.createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    handle(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(`Simulator error: ${String(err)}`, 'server_error', null));
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/v1/models' && req.method === 'GET') {
      return sendJson(res, 200, { object: 'list', data: [{ id: 'sim-1', object: 'model', created: 0, owned_by: 'llm-sim' }] });
    }
    if (path !== '/v1/chat/completions') {
      return sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${url.pathname}.`, 'invalid_request_error', 'unknown_url'));
    }
    if (req.method !== 'POST') {
      return sendJson(res, 405, errorBody(`Method ${req.method} not allowed; use POST.`, 'invalid_request_error', 'method_not_allowed'));
    }
    const raw = await readBody(req);
    if (raw === null) return sendJson(res, 413, errorBody('Request body too large.', 'invalid_request_error', null));
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      return sendJson(res, 400, errorBody(`We could not parse the JSON body of your request. (${(e as Error).message})`, 'invalid_request_error', null));
    }
    if (opts.recordRequests !== false) requests.push({ body, receivedAt: Date.now() });
    const invalid = validateBody(body);
    if (invalid) return sendJson(res, 400, errorBody(invalid, 'invalid_request_error', null));

    const plan = planReply(body, defaults, faultCounters);
    const id = 'chatcmpl-' + sha(JSON.stringify(body)).slice(0, 24);
    const model = typeof body.model === 'string' ? body.model : 'sim-1';
    const headers = { 'x-request-id': 'req_' + id.slice(9) };

    if (plan.kind === 'hang') return; // never answered; close() or the client ends it
    if (plan.kind === 'error') {
      if (plan.status === 429) {
        return sendJson(res, 429, errorBody(plan.message, 'requests', 'rate_limit_exceeded'), {
          ...headers,
          'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
          'retry-after-ms': String(retryAfterMs),
        });
      }
      return sendJson(res, 500, errorBody(plan.message, 'server_error', null), headers);
    }

    // Abort delays when the client goes away or the sim shuts down.
    const ac = new AbortController();
    const onGone = () => ac.abort();
    res.on('close', onGone);
    shutdown.signal.addEventListener('abort', onGone, { once: true });
    try {
      if (body.stream === true) await streamReply(res, plan, id, model, body, headers, ac.signal);
      else await jsonReply(res, plan, id, model, headers, ac.signal);
    } finally {
      shutdown.signal.removeEventListener('abort', onGone);
    }
  }

  return new Promise<LlmSim>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        baseURL: `http://${urlHost}:${port}/v1`,
        port,
        requests,
        close() {
          closing ??= new Promise<void>((done) => {
            shutdown.abort();
            for (const res of open) res.destroy();
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

type Reply = Exclude<ReplyPlan, { kind: 'hang' } | { kind: 'error' }>;

function toolCallsMessage(calls: SimToolCall[]) {
  return calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

async function jsonReply(res: http.ServerResponse, plan: Reply, id: string, model: string, headers: Record<string, string>, signal: AbortSignal) {
  const steps = plan.kind === 'text' ? plan.pieces.length : plan.calls.length;
  await sleep(plan.timing.firstTokenDelayMs + plan.timing.tokenDelayMs * Math.max(0, steps - 1), signal);
  if (signal.aborted) return;
  const message =
    plan.kind === 'text'
      ? { role: 'assistant', content: plan.text, refusal: null }
      : { role: 'assistant', content: null, refusal: null, tool_calls: toolCallsMessage(plan.calls) };
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

async function streamReply(res: http.ServerResponse, plan: Reply, id: string, model: string, body: any, headers: Record<string, string>, signal: AbortSignal) {
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
    events.push(chunk({ role: 'assistant', content: null, refusal: null }, null));
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
  const cutAt = plan.cut ? Math.max(1, Math.floor(events.length / 2)) : Infinity;
  await sleep(plan.timing.firstTokenDelayMs, signal);
  for (let i = 0; i < events.length; i++) {
    if (signal.aborted) return;
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
