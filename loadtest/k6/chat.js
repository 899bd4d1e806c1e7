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
// JWT_ISSUER / JWT_AUDIENCE as on the server, for minted tokens.
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
import { mintToken } from './lib/token.js';

const handshake = new Trend('convo_handshake_ms', true);
const firstDelta = new Trend('convo_first_delta_ms', true);
const turnTime = new Trend('convo_turn_ms', true);
const turnOk = new Rate('convo_turn_ok');
const protocolErrors = new Counter('convo_protocol_errors');

/** @param {string} spec `30s:20,1m:20,15s:0` */
function stages(spec) {
  return spec.split(',').map((stage) => {
    const [duration, target] = stage.split(':');
    return { duration: duration.trim(), target: Number(target) };
  });
}

export const options = {
  scenarios: {
    chat: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: stages(__ENV.STAGES || '30s:20,1m:20,15s:0'),
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
  const opened = Date.now();
  const ws = new WebSocket(URL, null, { headers: { Authorization: `Bearer ${token()}` } });
  /** @type {string | undefined} */
  let threadId;
  let lastSeq = 0;
  let turn = 0;
  /** @type {{ id: string, runId?: string, sentAt: number, events: Array<{ type: string, payload: Record<string, any> }>, seqs: number[], firstDeltaAt?: number, timer?: number } | undefined} */
  let current;
  let ready = false;
  /** The script closes the socket itself (done, or failed already): its close is expected. */
  let closing = false;

  const finish = () => {
    closing = true;
    clearTimeout(handshakeTimer);
    if (current && current.timer !== undefined) clearTimeout(current.timer);
    current = undefined;
    ws.close();
  };

  // A server that accepts the connection and then says nothing never sends session.ready.
  const handshakeTimer = setTimeout(() => {
    check(null, { 'session.ready within HANDSHAKE_TIMEOUT_MS': () => false });
    turnOk.add(false);
    finish();
  }, HANDSHAKE_TIMEOUT_MS);

  const send = () => {
    const id = `t${turn}`;
    current = { id, sentAt: Date.now(), events: [], seqs: [] };
    current.timer = setTimeout(() => {
      turnOk.add(false);
      check(null, { 'agent_completed within TURN_TIMEOUT_MS': () => false });
      finish();
    }, TURN_TIMEOUT_MS);
    const payload = { content: prompt(turn), ...(threadId ? { thread_id: threadId } : {}) };
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
      protocolErrors.add(1, { code: String(frame.payload.code) });
      check(frame, { 'no error frames': () => false });
      turnOk.add(false);
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
    finish();
  };

  // The server (or the network) closed the socket before the turns were done.
  ws.onclose = () => {
    if (closing) return;
    check(null, { 'socket open until the turns end': () => false });
    if (!ready) check(null, { 'handshake accepted': () => false });
    turnOk.add(false);
    closing = true;
    clearTimeout(handshakeTimer);
    if (current && current.timer !== undefined) clearTimeout(current.timer);
    current = undefined;
  };
}
