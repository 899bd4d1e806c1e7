import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clientPayloadSchemas } from '../protocol/schemas.js';
import { signToken } from '../server/auth.js';
import { routeTable } from '../server/rest/index.js';
import { TestClient, type Frame } from './support/client.js';
import { RestClient, type Method } from './support/rest-client.js';
import { useStack, type StackCtx } from './support/fixture.js';
import { sleep } from './support/wait.js';

/**
 * The authorization matrix (redis): an owner (admin of acme) has a thread with a completed turn, a
 * running turn and a queued turn, bound to a workspace agent of their own. Every WebSocket frame
 * type and every REST route is then tried against those resources by a colleague (member of acme)
 * and by an admin of another workspace with the same sub. Resource-scoped operations must fail
 * exactly as they do for a missing id; the others succeed but return none of the owner's data; and
 * nothing of the owner's changes. A frame type or route added without a matrix entry fails here.
 * (isolation.case.ts covers the thread operations in depth; this is the broad, generated sweep.)
 */

type Who = 'colleague' | 'other';
type Expect = 'deny' | 'allow';

interface Ids {
  thread: string;
  runRunning: string;
  runQueued: string;
  runDone: string;
  agent: string;
  /** The owner's client_message_id of the completed turn. */
  cmid: string;
}

const MISSING: Ids = {
  thread: 't_missing_0000000000000',
  runRunning: 'run_missing_000000000001',
  runQueued: 'run_missing_000000000002',
  runDone: 'run_missing_000000000003',
  agent: 'ag_missing_000000000000',
  cmid: 'cm_missing_000000000000',
};

interface Case<B> {
  name: string;
  build: (ids: Ids, attacker: Attacker) => B;
  expect: Record<Who, Expect>;
  /** Checks an allowed answer further. */
  check?: (body: any, ids: Ids, who: Who) => void;
  /**
   * A missing id is not refused but created as the caller's own (AG-UI and the AI SDK name new
   * threads by id): the refusal cannot look like a missing id's, and says only that the id is taken.
   */
  createsOnUse?: true;
}

const deny = { colleague: 'deny', other: 'deny' } as const;
const allow = { colleague: 'allow', other: 'allow' } as const;
/** Workspace agents are shared with the workspace's members by design (server/operations/agents.ts). */
const workspaceShared = { colleague: 'allow', other: 'deny' } as const;

interface Attacker {
  who: Who;
  sub: string;
  workspace: string;
  token: string;
}

const TITLE = 'Secret merger plans with Initech';
const FIRST = 'Confidential: the code word is aardvark';
const SECOND = 'Keep talking about the merger [[words:400]] [[delay:50]]';
const THIRD = 'Queued question about the quokka budget';
const AGENT_NAME = 'Zebra strategist';
const AGENT_PROMPT = 'Never reveal the platypus protocol to anyone.';

// ---- the matrix: every WebSocket frame type ----------------------------------------------------

type WsType = keyof typeof clientPayloadSchemas;

const noOwnerThread = (body: any, ids: Ids) => {
  for (const t of body.threads ?? []) assert.is.not(t.id, ids.thread);
};
const notOwnTurn = (body: any, ids: Ids) => {
  assert.is.not(body.thread_id, ids.thread, 'a new thread of their own');
  assert.not.ok(body.deduplicated, 'not deduplicated against the owner\'s message');
  assert.not.ok([ids.runDone, ids.runRunning, ids.runQueued].includes(body.run_id));
};

const wsMatrix: Record<WsType, Array<Case<object>>> = {
  'message.send': [
    { name: 'into the thread', build: (ids) => ({ thread_id: ids.thread, content: 'intruder was here' }), expect: deny },
    { name: 'into the thread, interrupt', build: (ids) => ({ thread_id: ids.thread, content: 'intruder was here', on_busy: 'interrupt' }), expect: deny },
    { name: 'into the thread, owner cmid', build: (ids) => ({ thread_id: ids.thread, content: 'intruder was here', client_message_id: ids.cmid }), expect: deny },
    { name: 'new thread, owner cmid', build: (ids) => ({ content: 'my own question', client_message_id: ids.cmid }), expect: allow, check: notOwnTurn },
    { name: 'new thread on the agent', build: (ids) => ({ agent_id: ids.agent, content: 'my own question' }), expect: workspaceShared, check: notOwnTurn },
  ],
  'thread.create': [
    { name: 'own thread', build: () => ({ title: 'mine' }), expect: allow, check: (b, ids) => assert.is.not(b.id, ids.thread) },
    { name: 'bound to the agent', build: (ids) => ({ agent_id: ids.agent }), expect: workspaceShared },
  ],
  'thread.list': [
    { name: 'default', build: () => ({}), expect: allow, check: noOwnerThread },
    { name: 'archived', build: () => ({ archived: true }), expect: allow, check: noOwnerThread },
  ],
  'thread.get': [{ name: 'the thread', build: (ids) => ({ thread_id: ids.thread }), expect: deny }],
  'thread.history': [{ name: 'the thread', build: (ids) => ({ thread_id: ids.thread, limit: 500 }), expect: deny }],
  'thread.update': [
    { name: 'title', build: (ids) => ({ thread_id: ids.thread, title: 'pwned' }), expect: deny },
    { name: 'archive', build: (ids) => ({ thread_id: ids.thread, archived: true }), expect: deny },
    { name: 'no change', build: (ids) => ({ thread_id: ids.thread }), expect: deny },
  ],
  'thread.delete': [{ name: 'the thread', build: (ids) => ({ thread_id: ids.thread }), expect: deny }],
  search: [
    { name: 'a word of a message', build: () => ({ q: 'aardvark' }), expect: allow, check: (b) => assert.equal(b.results, []) },
    { name: 'a word of the title', build: () => ({ q: 'merger' }), expect: allow, check: (b) => assert.equal(b.results, []) },
  ],
  'thread.subscribe': [{ name: 'from 0', build: (ids) => ({ thread_id: ids.thread, after_seq: 0 }), expect: deny }],
  // Unfollowing a thread one does not follow is a no-op answered the same for every id (checked
  // against a missing id below): no resource is touched and nothing is learnt.
  'thread.unsubscribe': [{ name: 'the thread', build: (ids) => ({ thread_id: ids.thread }), expect: allow }],
  'run.cancel': [
    { name: 'running run', build: (ids) => ({ run_id: ids.runRunning }), expect: deny },
    { name: 'queued run', build: (ids) => ({ run_id: ids.runQueued }), expect: deny },
    { name: 'completed run', build: (ids) => ({ run_id: ids.runDone }), expect: deny },
  ],
  'tool.approve': [
    { name: 'running run', build: (ids) => ({ run_id: ids.runRunning, tool_call_id: 'call_owner_0001', approved: true }), expect: deny },
    { name: 'completed run, denied', build: (ids) => ({ run_id: ids.runDone, tool_call_id: 'call_owner_0001', approved: false, reason: 'no' }), expect: deny },
  ],
  'auth.refresh': [{ name: 'own token', build: (_ids, a) => ({ token: a.token }), expect: allow }],
  ping: [{ name: '-', build: () => ({}), expect: allow }],
};

// ---- the matrix: every REST route ----------------------------------------------------------------

interface RestCase extends Case<{ path: string; body?: unknown }> {}

const get = (path: (ids: Ids) => string) => (ids: Ids) => ({ path: path(ids) });
/** A RunAgentInput for POST /v1/agui. */
const aguiInput = (threadId: string, rest: object) => ({ threadId, runId: 'r_intruder_01', messages: [], tools: [], context: [], state: {}, forwardedProps: {}, ...rest });

const restMatrix: Record<string, RestCase[]> = {
  'GET /v1/threads': [
    { name: 'default', build: get(() => '/v1/threads'), expect: allow, check: noOwnerThread },
    { name: 'archived', build: get(() => '/v1/threads?archived=true'), expect: allow, check: noOwnerThread },
  ],
  'POST /v1/threads': [
    { name: 'own thread', build: () => ({ path: '/v1/threads', body: { title: 'mine' } }), expect: allow, check: (b, ids) => assert.is.not(b.id, ids.thread) },
    { name: 'bound to the agent', build: (ids) => ({ path: '/v1/threads', body: { agent_id: ids.agent } }), expect: workspaceShared },
  ],
  'GET /v1/threads/:id': [{ name: 'the thread', build: get((ids) => `/v1/threads/${ids.thread}`), expect: deny }],
  'PATCH /v1/threads/:id': [
    { name: 'title', build: (ids) => ({ path: `/v1/threads/${ids.thread}`, body: { title: 'pwned' } }), expect: deny },
    { name: 'archive', build: (ids) => ({ path: `/v1/threads/${ids.thread}`, body: { archived: true } }), expect: deny },
    { name: 'no change', build: (ids) => ({ path: `/v1/threads/${ids.thread}`, body: {} }), expect: deny },
  ],
  'DELETE /v1/threads/:id': [{ name: 'the thread', build: get((ids) => `/v1/threads/${ids.thread}`), expect: deny }],
  'GET /v1/threads/:id/history': [{ name: 'the thread', build: get((ids) => `/v1/threads/${ids.thread}/history?limit=500`), expect: deny }],
  'POST /v1/threads/:id/messages': [
    { name: 'a message', build: (ids) => ({ path: `/v1/threads/${ids.thread}/messages`, body: { content: 'intruder was here' } }), expect: deny },
    {
      name: 'owner cmid, interrupt',
      build: (ids) => ({ path: `/v1/threads/${ids.thread}/messages`, body: { content: 'intruder was here', client_message_id: ids.cmid, on_busy: 'interrupt' } }),
      expect: deny,
    },
  ],
  'GET /v1/threads/:id/events': [
    { name: 'from 0', build: get((ids) => `/v1/threads/${ids.thread}/events?after_seq=0`), expect: deny },
    { name: 'long-poll', build: get((ids) => `/v1/threads/${ids.thread}/events?after_seq=1000&wait_ms=300`), expect: deny },
  ],
  'POST /v1/runs/:id/cancel': [
    { name: 'running run', build: get((ids) => `/v1/runs/${ids.runRunning}/cancel`), expect: deny },
    { name: 'queued run', build: get((ids) => `/v1/runs/${ids.runQueued}/cancel`), expect: deny },
    { name: 'completed run', build: get((ids) => `/v1/runs/${ids.runDone}/cancel`), expect: deny },
  ],
  'GET /v1/runs/:id': [
    { name: 'running run', build: get((ids) => `/v1/runs/${ids.runRunning}`), expect: deny },
    { name: 'completed run', build: get((ids) => `/v1/runs/${ids.runDone}`), expect: deny },
  ],
  'POST /v1/runs/:id/approvals': [
    { name: 'running run', build: (ids) => ({ path: `/v1/runs/${ids.runRunning}/approvals`, body: { tool_call_id: 'call_owner_0001', approved: true } }), expect: deny },
  ],
  // AG-UI and the AI SDK name threads by id: someone else's is refused as if it did not exist (a
  // new id would create the caller's own thread, so the probes name the owner's), and an answer to
  // the owner's approval never counts.
  'POST /v1/agui': [
    {
      name: 'a message on the thread',
      build: (ids) => ({ path: '/v1/agui', body: aguiInput(ids.thread, { messages: [{ id: 'm_intruder_01', role: 'user', content: 'intruder was here' }] }) }),
      expect: deny,
      createsOnUse: true,
    },
    {
      name: 'resume an interrupt',
      build: (ids) => ({ path: '/v1/agui', body: aguiInput(ids.thread, { resume: [{ interruptId: `${ids.runRunning}:call_owner_0001`, status: 'resolved', payload: { approved: true } }] }) }),
      expect: deny,
      createsOnUse: true,
    },
  ],
  'POST /v1/ai-sdk/chat': [
    {
      name: 'a message on the thread',
      build: (ids) => ({ path: '/v1/ai-sdk/chat', body: { id: ids.thread, trigger: 'submit-message', messages: [{ id: 'u_intruder_01', role: 'user', parts: [{ type: 'text', text: 'intruder was here' }] }] } }),
      expect: deny,
      createsOnUse: true,
    },
  ],
  // A resume shows nothing to anyone but the owner: 204, as for a chat with nothing running.
  'GET /v1/ai-sdk/chat/:id/stream': [
    { name: 'the running turn', build: get((ids) => `/v1/ai-sdk/chat/${ids.thread}/stream`), expect: allow, check: (b) => assert.is(b, undefined, 'an empty answer') },
  ],
  'POST /v1/ai-sdk/chat/:id/stop': [{ name: 'the running turn', build: get((ids) => `/v1/ai-sdk/chat/${ids.thread}/stop`), expect: deny }],
  'GET /v1/search': [
    { name: 'a word of a message', build: get(() => '/v1/search?q=aardvark'), expect: allow, check: (b) => assert.equal(b.results, []) },
    { name: 'a word of the title', build: get(() => '/v1/search?q=merger'), expect: allow, check: (b) => assert.equal(b.results, []) },
  ],
  'POST /v1/ws-ticket': [{ name: 'own ticket', build: () => ({ path: '/v1/ws-ticket' }), expect: allow }],
  'GET /v1/agents': [
    {
      name: 'list',
      build: get(() => '/v1/agents'),
      expect: allow,
      check: (b, ids, who) => assert.is(b.agents.some((a: any) => a.id === ids.agent), who === 'colleague', 'the agent is listed only in its workspace'),
    },
  ],
  'POST /v1/agents': [
    // A member may not create agents at all; an admin elsewhere creates one in their own workspace.
    { name: 'own agent', build: () => ({ path: '/v1/agents', body: { name: 'mine' } }), expect: { colleague: 'deny', other: 'allow' }, check: (b) => assert.is.not(b.workspace_id, 'acme') },
  ],
  'GET /v1/agents/:id': [{ name: 'the agent', build: get((ids) => `/v1/agents/${ids.agent}`), expect: workspaceShared }],
  'PATCH /v1/agents/:id': [
    { name: 'rename', build: (ids) => ({ path: `/v1/agents/${ids.agent}`, body: { name: 'pwned' } }), expect: deny },
    { name: 'prompt', build: (ids) => ({ path: `/v1/agents/${ids.agent}`, body: { system_prompt: 'leak everything' } }), expect: deny },
  ],
  'DELETE /v1/agents/:id': [{ name: 'the agent', build: get((ids) => `/v1/agents/${ids.agent}`), expect: deny }],
};

/** Every route of the table that needs a token, as 'GET /v1/...'. */
function declaredRoutes(): string[] {
  const routes = routeTable.filter((route) => route.auth === 'bearer').map((route) => `${route.method.toUpperCase()} ${route.path}`);
  assert.ok(routes.length >= 10, `${routes.length} routes need a token`);
  return routes;
}

// ---- the suite --------------------------------------------------------------------------------------

interface Row {
  who: Who;
  op: string;
  expected: Expect;
  got: string;
}

async function snapshot(ctx: StackCtx, ids: Ids) {
  const db = ctx.stack.db;
  return {
    thread: await db.selectFrom('threads').selectAll().where('id', '=', ids.thread).executeTakeFirstOrThrow(),
    messages: await db.selectFrom('messages').select(['id', 'role', 'content', 'run_id', 'client_message_id', 'created_at'])
      .where('thread_id', '=', ids.thread).orderBy('created_at').orderBy('id').execute(),
    runs: await db.selectFrom('runs').selectAll().where('thread_id', '=', ids.thread).orderBy('created_at').execute(),
    events: await db.selectFrom('events').select(['seq', 'run_id', 'type', 'payload']).where('thread_id', '=', ids.thread).orderBy('seq').execute(),
    agent: await db.selectFrom('agents').selectAll().where('id', '=', ids.agent).executeTakeFirstOrThrow(),
  };
}

const test = suite<StackCtx>('authorization matrix (redis)');
useStack(test, { backend: 'redis' });

test('every frame type and every route: other users are refused the owner\'s resources, learn nothing, change nothing', async (ctx) => {
  // Coverage first: a new frame type or route without a matrix entry fails here.
  const frameTypes = Object.keys(clientPayloadSchemas);
  assert.equal(frameTypes.filter((t) => !(t in wsMatrix)), [], 'frame types without a matrix entry');
  assert.equal(Object.keys(wsMatrix).filter((t) => !frameTypes.includes(t)), [], 'matrix entries for frame types that do not exist');
  const routes = declaredRoutes();
  assert.equal(routes.filter((r) => !(r in restMatrix)), [], 'routes without a matrix entry');
  assert.equal(Object.keys(restMatrix).filter((r) => !routes.includes(r)), [], 'matrix entries for routes that do not exist');

  const sign = (sub: string, workspace: string, role: string) =>
    signToken(ctx.stack.secret, { sub, workspace, ttlSeconds: 3600, extra: { role } });

  // ---- the owner's resources
  const ownerToken = await sign('owner', 'acme', 'admin');
  const ownerRest = new RestClient(ctx.base, ownerToken);
  const agentRes = await ownerRest.post('/v1/agents', { name: AGENT_NAME, system_prompt: AGENT_PROMPT });
  assert.equal(agentRes.status, 201, JSON.stringify(agentRes.body));
  const owner = await TestClient.connect(ctx.url, { token: ownerToken });
  ctx.clients.push(owner);
  await owner.next((f) => f.type === 'session.ready');
  const created = await owner.request('thread.create', { title: TITLE, agent_id: agentRes.body.id });
  assert.equal(created.type, 'ack', JSON.stringify(created));
  const thread: string = created.payload.id;
  const cmid = 'cm_owner_first_turn_0001';
  const first = await owner.request('message.send', { thread_id: thread, content: FIRST, client_message_id: cmid });
  assert.equal(first.type, 'ack', JSON.stringify(first));
  const done = await owner.completed(first.payload.run_id);
  assert.equal(done.payload.status, 'completed');
  const reply: string = done.payload.message.content;
  assert.ok(reply.length >= 20, `a real reply: ${reply}`);
  const second = await owner.request('message.send', { thread_id: thread, content: SECOND });
  assert.equal(second.type, 'ack');
  await owner.next((f) => f.type === 'agent_thinking' && f.payload.run_id === second.payload.run_id);
  const third = await owner.request('message.send', { thread_id: thread, content: THIRD, on_busy: 'enqueue' });
  assert.equal(third.type, 'ack');
  const ids: Ids = {
    thread,
    runDone: first.payload.run_id,
    runRunning: second.payload.run_id,
    runQueued: third.payload.run_id,
    agent: agentRes.body.id,
    cmid,
  };
  const before = await snapshot(ctx, ids);
  assert.equal(before.runs.map((r) => r.status), ['completed', 'running', 'queued'], 'a completed, a running and a queued run');

  // The owner's secrets: an answer may contain one only if the request itself carried it.
  const secretsFor = (who: Who): string[] => [
    ids.thread, ids.runDone, ids.runRunning, ids.runQueued, ids.cmid,
    TITLE, 'Initech', FIRST, 'aardvark', SECOND.slice(0, 30), THIRD, 'quokka', reply.slice(0, 40), reply.slice(-40),
    ...(who === 'other' ? [ids.agent, AGENT_NAME, AGENT_PROMPT, 'platypus'] : []),
  ];
  /** Secrets never put in any request: checked against everything an attacker received. */
  const neverSent = (who: Who) => secretsFor(who).filter((s) => !Object.values(ids).includes(s));
  const assertNoLeak = (label: string, who: Who, request: unknown, answer: unknown) => {
    const sent = JSON.stringify(request);
    const got = JSON.stringify(answer) ?? '';
    for (const secret of secretsFor(who)) {
      if (sent.includes(secret)) continue;
      assert.not.ok(got.includes(secret), `${label}: the answer leaks ${JSON.stringify(secret)}: ${got.slice(0, 400)}`);
    }
  };

  const attackers: Attacker[] = [
    { who: 'colleague', sub: 'colleague', workspace: 'acme', token: await sign('colleague', 'acme', 'member') },
    { who: 'other', sub: 'owner', workspace: 'other-corp', token: await sign('owner', 'other-corp', 'admin') },
  ];
  const rows: Row[] = [];
  const failures: string[] = [];
  const started = Date.now();

  for (const attacker of attackers) {
    const { who } = attacker;
    const socket = await TestClient.connect(ctx.url, { token: attacker.token });
    ctx.clients.push(socket);
    const ready = await socket.next((f) => f.type === 'session.ready');
    assert.equal([ready.payload.user_id, ready.payload.workspace_id], [attacker.sub, attacker.workspace]);
    const rest = new RestClient(ctx.base, attacker.token);

    const outcome = (label: string, expected: Expect, ok: boolean, shown: string, code: string) => {
      rows.push({ who, op: label, expected, got: shown });
      if (ok !== (expected === 'allow')) failures.push(`${who} ${label}: expected ${expected}, got ${code}`);
      if (!ok && expected === 'deny' && code !== 'not_found' && code !== 'forbidden') {
        failures.push(`${who} ${label}: refused with ${code}, expected not_found or forbidden`);
      }
    };

    // WebSocket: every frame type.
    for (const [type, cases] of Object.entries(wsMatrix) as Array<[WsType, Array<Case<object>>]>) {
      for (const c of cases) {
        const label = `ws ${type} (${c.name})`;
        const payload = c.build(ids, attacker);
        const answer = await socket.request(type, payload);
        const ok = answer.type === 'ack' || answer.type === 'pong';
        outcome(label, c.expect[who], ok, ok ? answer.type : `error ${answer.payload.code}`, ok ? '' : answer.payload.code);
        assertNoLeak(label, who, payload, answer);
        if (ok && c.check) c.check(answer.payload, ids, who);
        if (!ok || type === 'thread.unsubscribe') {
          // The same answer as for ids that do not exist: no existence oracle.
          const missing = await socket.request(type, c.build(MISSING, attacker));
          const strip = (f: Frame, set: Ids) =>
            JSON.stringify(f.payload).split(set.thread).join('<t>').split(set.runRunning).join('<r>').split(set.runQueued).join('<r>')
              .split(set.runDone).join('<r>').split(set.agent).join('<a>');
          assert.equal([missing.type, strip(missing, MISSING)], [answer.type, strip(answer, ids)], `${who} ${label}: same as for a missing id`);
        }
      }
    }

    // REST: every route.
    for (const [route, cases] of Object.entries(restMatrix)) {
      const method = route.split(' ')[0] as Method;
      for (const c of cases) {
        const label = `${route} (${c.name})`;
        const request = c.build(ids, attacker);
        const res = await rest.call(method, request.path, request.body);
        const ok = res.status < 400;
        outcome(label, c.expect[who], ok, `${res.status}${ok ? '' : ` ${res.body.code}`}`, ok ? '' : res.body.code);
        assertNoLeak(label, who, request, res.body);
        if (ok && c.check) c.check(res.body, ids, who);
        if (!ok && !c.createsOnUse) {
          const missingRequest = c.build(MISSING, attacker);
          const missing = await rest.call(method, missingRequest.path, missingRequest.body);
          assert.equal([missing.status, missing.body.code], [res.status, res.body.code], `${who} ${label}: same as for a missing id`);
        }
      }
    }

    // Everything the attacker's socket received (including events of the threads it created).
    await socket.request('ping', {});
    // A window in which nothing may arrive: an event that went round the broker would show up here.
    await sleep(200);
    assert.equal(socket.events(ids.thread), [], `${who}: no event of the owner's thread reached the socket`);
    const everything = JSON.stringify(socket.frames);
    for (const secret of neverSent(who)) {
      assert.not.ok(everything.includes(secret), `${who}: a frame on the socket leaks ${JSON.stringify(secret)}`);
    }
    assert.equal(socket.invalid, [], `${who}: every frame was valid`);
  }
  const elapsed = Date.now() - started;

  // ---- the record
  const ops = [...new Set(rows.map((r) => r.op))];
  const width = Math.max(...ops.map((o) => o.length));
  const lines = [`authorization matrix: ${ops.length} operations x ${attackers.length} callers = ${rows.length} attempts (${elapsed} ms)`,
    `${'operation'.padEnd(width)}  ${'colleague (acme, member)'.padEnd(28)}  other-corp admin (same sub)`];
  for (const op of ops) {
    const cell = (who: Who) => {
      const row = rows.find((r) => r.op === op && r.who === who)!;
      return `${row.expected === 'allow' ? 'allow' : 'deny '} -> ${row.got}`;
    };
    lines.push(`${op.padEnd(width)}  ${cell('colleague').padEnd(28)}  ${cell('other')}`);
  }
  console.log(lines.join('\n'));
  assert.equal(failures, [], 'every attempt answered as expected');

  // ---- nothing of the owner's changed
  const after = await snapshot(ctx, ids);
  const stable = (t: typeof before.thread) => ({ ...t, last_seq: 0, updated_at: 0 });
  assert.equal(stable(after.thread), stable(before.thread), 'thread row unchanged (title, archived, agent, owner)');
  assert.equal(after.agent, before.agent, 'agent row unchanged (name, prompt, not deleted)');
  assert.equal(after.messages.slice(0, before.messages.length), before.messages, 'the owner\'s messages unchanged');
  for (const extra of after.messages.slice(before.messages.length)) {
    assert.ok(extra.role !== 'user' && extra.run_id === ids.runRunning, `only the running turn added messages: ${JSON.stringify(extra)}`);
  }
  assert.equal(after.runs.map((r) => r.status), ['completed', 'running', 'queued'],
    'no run cancelled or interrupted (and the running one outlasted the matrix: make it slower if this fails)');
  const runStable = (r: typeof before.runs[number]) => ({ ...r, attempt: 0, started_at: null, finished_at: null, heartbeat_at: null });
  assert.equal(after.runs.map(runStable), before.runs.map(runStable), 'runs unchanged');
  assert.equal(after.events.slice(0, before.events.length), before.events, 'stored events unchanged');
  for (const extra of after.events.slice(before.events.length)) {
    assert.ok(extra.run_id === ids.runRunning && extra.type !== 'message_created', `only the running turn added events: ${extra.type}`);
  }
  const foreign = await ctx.stack.db.selectFrom('threads').select(['id', 'workspace_id']).where('agent_id', '=', ids.agent)
    .where('workspace_id', '!=', 'acme').execute();
  assert.equal(foreign, [], 'no other workspace got a thread bound to the owner\'s agent');

  // Clean up quickly: the owner cancels their own queued and running turns.
  for (const run of [ids.runQueued, ids.runRunning]) {
    const res = await owner.request('run.cancel', { run_id: run });
    assert.equal(res.type, 'ack', `the owner may cancel: ${JSON.stringify(res)}`);
  }
  assert.equal((await owner.completed(ids.runRunning, 10_000)).payload.status, 'cancelled');
});

test.run();
