// k6 load test of convo-gateway: each virtual user opens a socket with a JWT, sends turns on one
// thread and waits for each agent_completed, checking the lifecycle order and gap-free seqs.
//
//   k6 run loadtest/k6/chat.js -e URL=ws://127.0.0.1:8080/v1/ws -e TOKEN=<jwt>
//   k6 run loadtest/k6/chat.js -e URL=ws://127.0.0.1:8080/v1/ws -e JWT_SECRET=<the server's secret>
//
// Settings (-e NAME=value): URL; TOKEN (one user for every VU) or JWT_SECRET (a user per VU,
// `k6-vu-<n>` in WORKSPACE, default `k6`; JWT_WORKSPACE_CLAIM as on the server); TURNS per
// iteration (3); MESSAGE (a prompt; the default alternates a plain one and a tool call);
// STAGES of the ramping-VUs scenario, `duration:target,...` (`30s:20,1m:20,15s:0`);
// TURN_TIMEOUT_MS (30000); HANDSHAKE_TIMEOUT_MS (10000: connect to session.ready);
// JWT_ISSUER / JWT_AUDIENCE as on the server, for minted tokens; MESSAGES_PER_MIN (60) and
// THREADS_PER_MIN (30), the server's RATE_LIMIT_MESSAGES_PER_MIN and RATE_LIMIT_THREADS_PER_MIN
// (0: not paced); SEND_RETRIES (5).
//
// Each VU keeps within the server's per-user limits (lib/pace.js): sends and new threads are spaced
// so that a user stays under MESSAGES_PER_MIN and THREADS_PER_MIN (with TOKEN every VU is the same
// user, so they share the budget). A request refused `rate_limited` anyway is sent again after the
// server's retry_after_ms (up to SEND_RETRIES times), on the same socket; any other failure waits
// retry_after_ms (at least a second) before the VU connects again, so a refusing server is not met
// with a reconnect loop. The script offers the `chat.v1` subprotocol, so a refused handshake too
// arrives as an error frame that says how long to wait.
//
// A stalled or failing server fails the run instead of passing quietly: the handshake and each turn
// have a deadline, and a socket that closes before its turns are done fails a check. (k6 ends an
// iteration still waiting at the end of the test without a sample, and a threshold over no samples
// does not fail by itself.)
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { setTimeout, clearTimeout } from 'k6/timers';
import { WebSocket } from 'k6/websockets';
import { gapFree, lifecycleProblem } from './lib/lifecycle.js';
import { createPace } from './lib/pace.js';
import { mintToken } from './lib/token.js';

const handshake = new Trend('convo_handshake_ms', true);
const firstDelta = new Trend('convo_first_delta_ms', true);
const turnTime = new Trend('convo_turn_ms', true);
const turnOk = new Rate('convo_turn_ok');
const protocolErrors = new Counter('convo_protocol_errors');
/** Refusals with `rate_limited` (each one waited out before anything else was sent). */
const rateLimited = new Counter('convo_rate_limited');
/** How long a VU waited after a refusal before sending again or reconnecting. */
const backoff = new Trend('convo_backoff_ms', true);

/** @param {string} spec `30s:20,1m:20,15s:0` */
function stages(spec) {
  return spec.split(',').map((stage) => {
    const [duration, target] = stage.split(':');
    return { duration: duration.trim(), target: Number(target) };
  });
}

const STAGES = stages(__ENV.STAGES || '30s:20,1m:20,15s:0');

export const options = {
  scenarios: {
    chat: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: STAGES,
      gracefulRampDown: '30s',
    },
  },
  thresholds: {
    convo_handshake_ms: ['p(95)<1000'],
    convo_turn_ms: ['p(95)<15000'],
    convo_turn_ok: ['rate>0.99'],
    convo_protocol_errors: ['count==0'],
    checks: ['rate>0.99'],
  },
};

const URL = __ENV.URL || 'ws://127.0.0.1:8080/v1/ws';
const TURNS = Number(__ENV.TURNS || 3);
const TURN_TIMEOUT_MS = Number(__ENV.TURN_TIMEOUT_MS || 30000);
const HANDSHAKE_TIMEOUT_MS = Number(__ENV.HANDSHAKE_TIMEOUT_MS || 10000);
const SEND_RETRIES = Number(__ENV.SEND_RETRIES || 5);
/** After a failure the server gave no wait for: a second before connecting again. */
const FAILURE_BACKOFF_MS = 1000;

const pace = createPace({
  messagesPerMin: Number(__ENV.MESSAGES_PER_MIN ?? 60),
  threadsPerMin: Number(__ENV.THREADS_PER_MIN ?? 30),
  // One TOKEN is one user for every VU: the budget is shared by as many VUs as the stages reach.
  sharers: __ENV.TOKEN ? Math.max(1, ...STAGES.map((s) => s.target)) : 1,
});

function token() {
  if (__ENV.TOKEN) return __ENV.TOKEN;
  if (!__ENV.JWT_SECRET) throw new Error('set -e TOKEN=<jwt> or -e JWT_SECRET=<the server secret>');
  return mintToken(__ENV.JWT_SECRET, {
    sub: `k6-vu-${__VU}`,
    workspace: __ENV.WORKSPACE || 'k6',
    workspaceClaim: __ENV.JWT_WORKSPACE_CLAIM || 'workspace_id',
    issuer: __ENV.JWT_ISSUER,
    audience: __ENV.JWT_AUDIENCE,
  });
}

/** @param {number} turn */
function prompt(turn) {
  if (__ENV.MESSAGE) return __ENV.MESSAGE;
  return turn % 2 === 0 ? `Hello from VU ${__VU}, turn ${turn + 1}` : 'What time is it?';
}

export default function () {
  // Waiting out a back-off or the pace: the iteration holds a timer, not a socket.
  const wait = pace.beforeConnect();
  if (wait > 0) setTimeout(converse, wait);
  else converse();
}

function converse() {
  const opened = Date.now();
  // chat.v1: a refused handshake is told as an error frame (with retry_after_ms), not a bare HTTP error.
  const ws = new WebSocket(URL, null, { headers: { Authorization: `Bearer ${token()}`, 'Sec-WebSocket-Protocol': 'chat.v1' } });
  /** @type {string | undefined} */
  let threadId;
  let lastSeq = 0;
  let turn = 0;
  /** @type {{ id: string, runId?: string, sentAt: number, events: Array<{ type: string, payload: Record<string, any> }>, seqs: number[], firstDeltaAt?: number, timer?: number, retries: number } | undefined} */
  let current;
  /** A send waiting for its turn (the pace, or a retry after a refusal). @type {number | undefined} */
  let sendTimer;
  let ready = false;
  /** The script closes the socket itself (done, or failed already): its close is expected. */
  let closing = false;

  const finish = () => {
    closing = true;
    clearTimeout(handshakeTimer);
    if (sendTimer !== undefined) clearTimeout(sendTimer);
    if (current && current.timer !== undefined) clearTimeout(current.timer);
    current = undefined;
    ws.close();
  };

  /** Nothing is sent, nor a new socket opened, before `ms` have passed. @param {number} ms */
  const backOff = (ms) => {
    pace.backOff(ms);
    backoff.add(ms);
  };

  // A server that accepts the connection and then says nothing never sends session.ready.
  const handshakeTimer = setTimeout(() => {
    check(null, { 'session.ready within HANDSHAKE_TIMEOUT_MS': () => false });
    turnOk.add(false);
    finish();
  }, HANDSHAKE_TIMEOUT_MS);

  /** Sends this turn's message once the pace allows; `retries` refusals of it so far. */
  const send = (retries = 0) => {
    sendTimer = undefined;
    const wait = pace.beforeSend(!threadId);
    if (wait > 0) {
      sendTimer = setTimeout(() => send(retries), wait);
      return;
    }
    const id = `t${turn}`;
    current = { id, sentAt: Date.now(), events: [], seqs: [], retries };
    current.timer = setTimeout(() => {
      turnOk.add(false);
      check(null, { 'agent_completed within TURN_TIMEOUT_MS': () => false });
      finish();
    }, TURN_TIMEOUT_MS);
    const payload = { content: prompt(turn), ...(threadId ? { thread_id: threadId } : {}) };
    pace.sent(!threadId);
    ws.send(JSON.stringify({ type: 'message.send', id, payload }));
  };

  ws.onmessage = (event) => {
    if (!event) return;
    /** @type {{ type: string, id?: string, payload: Record<string, any> }} */
    const frame = JSON.parse(String(event.data));
    if (frame.type === 'session.ready') {
      ready = true;
      clearTimeout(handshakeTimer);
      handshake.add(Date.now() - opened);
      send();
      return;
    }
    if (frame.type === 'error') {
      const code = String(frame.payload.code);
      const retryAfter = Number(frame.payload.retry_after_ms) || 0;
      if (code === 'rate_limited') {
        rateLimited.add(1);
        // This turn's send, refused before anything was stored: the same send after the wait.
        if (current && frame.id === current.id && current.retries < SEND_RETRIES) {
          const retries = current.retries + 1;
          if (current.timer !== undefined) clearTimeout(current.timer);
          current = undefined;
          backOff(Math.max(retryAfter, 100));
          send(retries);
          return;
        }
        if (ready) check(frame, { 'not rate limited past SEND_RETRIES': () => false });
      } else {
        protocolErrors.add(1, { code });
        check(frame, { 'no error frames': () => false });
      }
      // Before session.ready: the handshake was refused (the socket closes after this frame).
      if (!ready) check(null, { 'handshake accepted': () => false });
      turnOk.add(false);
      backOff(Math.max(retryAfter, FAILURE_BACKOFF_MS));
      finish();
      return;
    }
    if (!current) return;
    if (frame.type === 'ack' && frame.id === current.id) {
      current.runId = frame.payload.run_id;
      threadId = frame.payload.thread_id;
      return;
    }
    if (typeof frame.payload.seq !== 'number') return;
    current.seqs.push(frame.payload.seq);
    // One turn at a time on this thread: every run event now is this turn's (it may even come
    // before the ack, which is why events are not filtered by the ack's run_id).
    if (frame.type === 'message_created') return;
    current.events.push(frame);
    if (frame.type === 'message_delta' && current.firstDeltaAt === undefined) {
      current.firstDeltaAt = Date.now();
      firstDelta.add(current.firstDeltaAt - current.sentAt);
    }
    if (frame.type !== 'agent_completed') return;
    const done = current;
    turnTime.add(Date.now() - done.sentAt);
    const problem = lifecycleProblem(done.events);
    const passed = check(done, {
      'turn completed': (t) => t.events[t.events.length - 1].payload.status === 'completed',
      'lifecycle in order': () => problem === undefined,
      'events of the acked run': (t) => t.events.every((e) => e.payload.run_id === t.runId),
      'seq gap-free': (t) => gapFree(t.seqs, lastSeq),
    });
    turnOk.add(passed);
    lastSeq = done.seqs[done.seqs.length - 1];
    if (done.timer !== undefined) clearTimeout(done.timer);
    turn += 1;
    if (turn < TURNS && passed) send();
    else finish();
  };

  ws.onerror = () => {
    if (closing) return;
    check(null, { 'socket without errors': () => false });
    if (!ready) check(null, { 'handshake accepted': () => false });
    turnOk.add(false);
    backOff(FAILURE_BACKOFF_MS);
    finish();
  };

  // The server (or the network) closed the socket before the turns were done.
  ws.onclose = () => {
    if (closing) return;
    check(null, { 'socket open until the turns end': () => false });
    if (!ready) check(null, { 'handshake accepted': () => false });
    turnOk.add(false);
    backOff(FAILURE_BACKOFF_MS);
    closing = true;
    clearTimeout(handshakeTimer);
    if (sendTimer !== undefined) clearTimeout(sendTimer);
    if (current && current.timer !== undefined) clearTimeout(current.timer);
    current = undefined;
  };
}
