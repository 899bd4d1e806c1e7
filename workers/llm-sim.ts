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
 * Directives in the user's message steer one reply (length, delays, forced tool calls, faults):
 * the list is at the top of llm-sim-directives.ts.
 *
 * Token counts: see llm-sim-request.ts.
 */
import http from 'node:http';
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { planReply } from './llm-sim-script.js';
import { errorBody, jsonReply, sendJson, streamReply } from './llm-sim-reply.js';
import { sha, validateBody } from './llm-sim-request.js';

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
