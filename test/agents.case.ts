import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import { RestClient, checkResult } from './support/rest-client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';
import { signToken } from '../server/auth.js';

interface Ctx extends StackCtx {
  admin: RestClient;
  member: RestClient;
  otherAdmin: RestClient;
  /** The acme agent the later tests bind threads to, and its thread. */
  agent: any;
  boundThread: string;
}

const PROMPT = 'You are a meticulous researcher. Cite your sources.';

/**
 * Agents of a workspace over REST: admins (role claim `admin`) manage them, members only read,
 * built-in agents are read-only, other workspaces' agents are invisible, and a soft-deleted agent
 * keeps serving the threads bound to it (agents.redis.test.ts, agents.embedded.test.ts).
 */
export function agentsSuite(backend: Backend): void {
const test = suite<Ctx>(`agents (${backend})`);
useStack(test, {
  backend,
  setup: async (ctx) => {
    const token = (sub: string, workspace: string, role?: string) =>
      signToken(ctx.stack.secret, { sub, workspace, ttlSeconds: 3600, ...(role ? { extra: { role } } : {}) });
    ctx.admin = new RestClient(ctx.base, await token('boss', 'acme', 'admin'));
    ctx.member = new RestClient(ctx.base, await token('bee', 'acme'));
    ctx.otherAdmin = new RestClient(ctx.base, await token('chief', 'globex', 'admin'));
  },
});

function expectError(res: { status: number; body: any }, status: number, code: string, what: string): void {
  assert.equal([res.status, res.body.code], [status, code], `${what}: ${JSON.stringify(res.body)}`);
}

async function listIds(client: RestClient): Promise<string[]> {
  const res = await client.get('/v1/agents');
  assert.equal(res.status, 200);
  checkResult('agentList', res.body);
  return res.body.agents.map((a: any) => a.id);
}

async function agentRows(ctx: Ctx): Promise<number> {
  return Number((await ctx.stack.db.selectFrom('agents').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
}

test('anyone lists and gets agents; the global default agent is there', async (ctx) => {
  for (const client of [ctx.member, ctx.admin, ctx.otherAdmin]) {
    const res = await client.get('/v1/agents');
    assert.equal(res.status, 200);
    checkResult('agentList', res.body);
    const fallback = res.body.agents.find((a: any) => a.id === 'ag_default');
    assert.ok(fallback, 'ag_default is listed');
    assert.equal([fallback.workspace_id, fallback.name], [null, 'Assistant']);
    const one = await client.get('/v1/agents/ag_default');
    assert.equal(one.status, 200);
    checkResult('agent', one.body);
    assert.equal(one.body, fallback, 'get answers what the list holds');
  }
  expectError(await ctx.member.get('/v1/agents/ag_nope'), 404, 'not_found', 'an unknown agent');
  expectError(await new RestClient(ctx.base).get('/v1/agents'), 401, 'unauthenticated', 'no token');
});

test('a member gets 403 for create, update and delete; an admin creates and updates', async (ctx) => {
  const rows = await agentRows(ctx);
  const input = {
    name: 'Researcher',
    description: 'Finds and cites sources.',
    model: 'sim-research',
    system_prompt: PROMPT,
    temperature: 0.3,
    tools: ['calculator'],
    max_tool_iterations: 4,
    busy_policy: 'reject',
    require_approval: ['calculator'],
    approval_timeout_s: 600,
  };
  expectError(await ctx.member.post('/v1/agents', input), 403, 'forbidden', 'a member creates');
  assert.is(await agentRows(ctx), rows, 'nothing was created');

  const created = await ctx.admin.post('/v1/agents', input);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  checkResult('agent', created.body);
  const agent = created.body;
  assert.match(agent.id, /^ag/);
  assert.equal({ ...agent, id: 0, created_at: 0, updated_at: 0 }, { ...input, id: 0, workspace_id: 'acme', created_at: 0, updated_at: 0 });

  const minimal = await ctx.admin.post('/v1/agents', { name: 'Minimal' });
  assert.equal(minimal.status, 201);
  assert.equal(
    [minimal.body.description, minimal.body.model, minimal.body.system_prompt, minimal.body.temperature, minimal.body.tools, minimal.body.max_tool_iterations, minimal.body.busy_policy, minimal.body.require_approval, minimal.body.approval_timeout_s],
    ['', null, '', null, [], 8, 'enqueue', [], 3600],
    'defaults',
  );
  // Members see what they need to pick and use an agent (name, description, tools, busy policy);
  // its system prompt only admins see.
  const { system_prompt: _prompt, ...memberView } = agent;
  assert.is(memberView.description, input.description);
  assert.equal((await ctx.member.get(`/v1/agents/${agent.id}`)).body, memberView, 'a member reads it, without the system prompt');
  assert.equal((await ctx.admin.get(`/v1/agents/${agent.id}`)).body, agent, 'an admin reads it whole');
  const listed = (await ctx.member.get('/v1/agents')).body.agents;
  assert.ok(listed.length > 0 && listed.every((a: any) => !('system_prompt' in a)), 'no system prompt in a member\'s list');
  assert.not.ok(JSON.stringify(listed).includes(PROMPT), 'the prompt text is nowhere in it');
  const ids = await listIds(ctx.member);
  assert.ok(ids.includes(agent.id) && ids.includes(minimal.body.id) && ids.includes('ag_default'));

  expectError(await ctx.member.patch(`/v1/agents/${agent.id}`, { name: 'Hijacked' }), 403, 'forbidden', 'a member updates');
  expectError(await ctx.member.del(`/v1/agents/${agent.id}`), 403, 'forbidden', 'a member deletes');
  assert.equal((await ctx.admin.get(`/v1/agents/${agent.id}`)).body, agent, 'unchanged by the member');

  const updated = await ctx.admin.patch(`/v1/agents/${agent.id}`, { name: 'Senior researcher', temperature: null, tools: ['calculator', 'get_current_time'] });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  checkResult('agent', updated.body);
  assert.equal(
    { ...updated.body, updated_at: 0 },
    { ...agent, name: 'Senior researcher', temperature: null, tools: ['calculator', 'get_current_time'], updated_at: 0 },
    'only the named fields changed',
  );
  assert.ok(Date.parse(updated.body.updated_at) >= Date.parse(agent.updated_at));
  assert.equal((await ctx.admin.get(`/v1/agents/${agent.id}`)).body, updated.body);
  const nothing = await ctx.admin.patch(`/v1/agents/${agent.id}`, {});
  assert.equal(nothing.status, 200);
  assert.equal({ ...nothing.body, updated_at: 0 }, { ...updated.body, updated_at: 0 }, 'an empty update changes nothing');
  ctx.agent = nothing.body;

  // A member whose token says some other role is still a member.
  const clerk = new RestClient(ctx.base, await signToken(ctx.stack.secret, { sub: 'clerk', workspace: 'acme', ttlSeconds: 600, extra: { role: 'member' } }));
  expectError(await clerk.post('/v1/agents', { name: 'Nope' }), 403, 'forbidden', 'role member creates');
});

test('an unknown tool is refused with 400, naming it and the available tools', async (ctx) => {
  const rows = await agentRows(ctx);
  const create = await ctx.admin.post('/v1/agents', { name: 'Wizard', tools: ['calculator', 'teleport'] });
  expectError(create, 400, 'invalid_request', 'create with an unknown tool');
  const message: string = create.body.message;
  assert.ok(message.includes('teleport'), message);
  assert.ok(message.includes('calculator') && message.includes('get_current_time'), `lists the available tools: ${message}`);
  assert.is(await agentRows(ctx), rows, 'nothing was created');

  const update = await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { tools: ['warp_drive', 'teleport'] });
  expectError(update, 400, 'invalid_request', 'update with unknown tools');
  assert.ok(update.body.message.includes('warp_drive') && update.body.message.includes('teleport'), update.body.message);
  assert.ok(update.body.message.includes('get_current_time'), update.body.message);
  assert.equal((await ctx.admin.get(`/v1/agents/${ctx.agent.id}`)).body, ctx.agent, 'unchanged');

  expectError(await ctx.admin.post('/v1/agents', { name: 'x', tools: 'calculator' }), 400, 'invalid_request', 'tools not a list');

  // require_approval names tools the agent offers, before and after an update.
  const outside = await ctx.admin.post('/v1/agents', { name: 'Careful', tools: ['get_current_time'], require_approval: ['calculator'] });
  expectError(outside, 400, 'invalid_request', 'approval for a tool the agent lacks');
  assert.match(outside.body.message, /require_approval.*calculator.*subset of tools \(get_current_time\)/);
  assert.is(await agentRows(ctx), rows, 'nothing was created');
  const dropped = await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { tools: ['get_current_time'] });
  expectError(dropped, 400, 'invalid_request', 'dropping a tool that needs approval');
  assert.match(dropped.body.message, /calculator/);
  expectError(await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { require_approval: ['teleport'] }), 400, 'invalid_request', 'approval for an unknown tool');
  for (const approval_timeout_s of [0, 604_801, 1.5]) {
    expectError(await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { approval_timeout_s }), 400, 'invalid_request', `approval_timeout_s ${approval_timeout_s}`);
  }
  assert.equal((await ctx.admin.get(`/v1/agents/${ctx.agent.id}`)).body, ctx.agent, 'unchanged');
  const week = await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { require_approval: [], approval_timeout_s: 604_800 });
  assert.equal([week.status, week.body.require_approval, week.body.approval_timeout_s], [200, [], 604_800]);
  const back = await ctx.admin.patch(`/v1/agents/${ctx.agent.id}`, { require_approval: ctx.agent.require_approval, approval_timeout_s: ctx.agent.approval_timeout_s });
  assert.equal({ ...back.body, updated_at: 0 }, { ...ctx.agent, updated_at: 0 });
  expectError(await ctx.admin.post('/v1/agents', { tools: [] }), 400, 'invalid_request', 'no name');
});

test('the built-in default agent cannot be changed or deleted', async (ctx) => {
  const before = (await ctx.member.get('/v1/agents/ag_default')).body;
  expectError(await ctx.admin.patch('/v1/agents/ag_default', { name: 'Mine now' }), 403, 'forbidden', 'an admin updates ag_default');
  expectError(await ctx.admin.del('/v1/agents/ag_default'), 403, 'forbidden', 'an admin deletes ag_default');
  expectError(await ctx.otherAdmin.patch('/v1/agents/ag_default', { system_prompt: 'Be evil.' }), 403, 'forbidden', 'another admin');
  expectError(await ctx.member.del('/v1/agents/ag_default'), 403, 'forbidden', 'a member deletes ag_default');
  assert.equal((await ctx.member.get('/v1/agents/ag_default')).body, before, 'unchanged');
  assert.ok((await listIds(ctx.member)).includes('ag_default'));
});

test('another workspace\'s agents are invisible and untouchable', async (ctx) => {
  const theirs = await ctx.otherAdmin.post('/v1/agents', { name: 'Globex bot', system_prompt: 'Globex secrets' });
  assert.equal(theirs.status, 201);
  assert.equal(theirs.body.workspace_id, 'globex');
  const theirId = theirs.body.id;

  for (const client of [ctx.member, ctx.admin]) {
    const res = await client.get('/v1/agents');
    assert.not.ok(res.body.agents.some((a: any) => a.workspace_id !== null && a.workspace_id !== 'acme'), 'only acme and global agents');
    assert.not.ok(JSON.stringify(res.body).includes('Globex'));
    expectError(await client.get(`/v1/agents/${theirId}`), 404, 'not_found', 'get theirs');
  }
  expectError(await ctx.admin.patch(`/v1/agents/${theirId}`, { name: 'Taken' }), 404, 'not_found', 'update theirs');
  expectError(await ctx.admin.del(`/v1/agents/${theirId}`), 404, 'not_found', 'delete theirs');
  const globexIds = await listIds(ctx.otherAdmin);
  assert.ok(globexIds.includes(theirId) && globexIds.includes('ag_default'));
  assert.not.ok(globexIds.includes(ctx.agent.id), 'acme\'s agent is not listed for globex');
  expectError(await ctx.otherAdmin.get(`/v1/agents/${ctx.agent.id}`), 404, 'not_found', 'globex gets acme\'s');
  expectError(await ctx.otherAdmin.del(`/v1/agents/${ctx.agent.id}`), 404, 'not_found', 'globex deletes acme\'s');
  assert.equal((await ctx.admin.get(`/v1/agents/${theirId}`)).status, 404);
  assert.equal((await ctx.otherAdmin.get(`/v1/agents/${theirId}`)).body.name, 'Globex bot', 'theirs is untouched');

  // Nor can a thread of acme use it.
  const client = await connect(ctx, 'bee');
  const create = await client.request('thread.create', { agent_id: theirId });
  assert.equal([create.type, create.payload.code], ['error', 'not_found']);
  const send = await client.request('message.send', { content: 'Hi', agent_id: theirId });
  assert.equal([send.type, send.payload.code], ['error', 'not_found']);
  expectError(await ctx.member.post('/v1/threads', { agent_id: theirId }), 404, 'not_found', 'REST thread with their agent');
});

test('a thread created with the agent is bound to it: agent_started carries its id and name, the model gets its settings', async (ctx) => {
  const client = await connect(ctx, 'bee');
  const created = await client.request('thread.create', { title: 'Research', agent_id: ctx.agent.id });
  assert.equal(created.type, 'ack', JSON.stringify(created));
  assert.equal(created.payload.agent_id, ctx.agent.id);
  const thread_id = created.payload.id;
  ctx.boundThread = thread_id;

  const ack = await client.request('message.send', { thread_id, content: 'Find something out for me' });
  const done = await client.completed(ack.payload.run_id);
  assert.equal(done.payload.status, 'completed');
  const started = client.events(thread_id).find((e) => e.type === 'agent_started')!;
  assert.equal([started.payload.agent_id, started.payload.agent_name], [ctx.agent.id, 'Senior researcher']);
  const request = ctx.stack.sim.requests.map((r) => r.body).find((b) => b.messages.some((m: any) => m.content === 'Find something out for me'));
  assert.ok(request, 'the simulator got the turn');
  assert.equal(request.messages[0], { role: 'system', content: PROMPT }, 'the agent\'s system prompt');
  assert.equal(request.model, 'sim-research', 'the agent\'s model');
  assert.equal((request.tools ?? []).map((t: any) => t.function.name).sort(), ['calculator', 'get_current_time']);

  // The same binding through REST and through message.send with agent_id.
  const viaRest = await ctx.member.post('/v1/threads', { agent_id: ctx.agent.id });
  assert.equal([viaRest.status, viaRest.body.agent_id], [201, ctx.agent.id]);
  const implicit = await client.request('message.send', { content: 'A new thread for the researcher', agent_id: ctx.agent.id });
  assert.equal(implicit.type, 'ack');
  const implicitStarted = await client.next((f) => f.type === 'agent_started' && f.payload.run_id === implicit.payload.run_id);
  assert.equal(implicitStarted.payload.agent_id, ctx.agent.id);
  await client.completed(implicit.payload.run_id);
  assert.equal((await client.request('thread.get', { thread_id: implicit.payload.thread_id })).payload.agent_id, ctx.agent.id);
  // A bound thread does not switch agents.
  const other = await client.request('message.send', { thread_id, content: 'Switch?', agent_id: 'ag_default' });
  assert.equal([other.type, other.payload.code], ['error', 'conflict']);
});

test('a deleted agent leaves the list and cannot start threads, but its thread still answers', async (ctx) => {
  const id = ctx.agent.id;
  expectError(await ctx.member.del(`/v1/agents/${id}`), 403, 'forbidden', 'a member deletes');
  const deleted = await ctx.admin.del(`/v1/agents/${id}`);
  assert.equal([deleted.status, deleted.body], [200, { agent_id: id, deleted: true }]);
  checkResult('agentDeleted', deleted.body);

  for (const client of [ctx.member, ctx.admin]) assert.not.ok((await listIds(client)).includes(id), 'not listed');
  expectError(await ctx.member.get(`/v1/agents/${id}`), 404, 'not_found', 'get after delete');
  expectError(await ctx.admin.patch(`/v1/agents/${id}`, { name: 'Back' }), 404, 'not_found', 'update after delete');
  expectError(await ctx.admin.del(`/v1/agents/${id}`), 404, 'not_found', 'delete twice');

  const client = await connect(ctx, 'bee');
  const create = await client.request('thread.create', { agent_id: id });
  assert.equal([create.type, create.payload.code], ['error', 'not_found']);
  const send = await client.request('message.send', { content: 'New thread please', agent_id: id });
  assert.equal([send.type, send.payload.code], ['error', 'not_found']);
  expectError(await ctx.member.post('/v1/threads', { agent_id: id }), 404, 'not_found', 'REST thread with a deleted agent');

  const thread = await client.request('thread.get', { thread_id: ctx.boundThread });
  assert.equal(thread.payload.agent_id, id, 'the existing thread keeps its agent');
  const ack = await client.request('message.send', { thread_id: ctx.boundThread, content: 'Still there?' });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const done = await client.completed(ack.payload.run_id);
  assert.equal(done.payload.status, 'completed', JSON.stringify(done.payload));
  const started = client.events(ctx.boundThread).find((e) => e.type === 'agent_started' && e.payload.run_id === ack.payload.run_id)!;
  assert.equal([started.payload.agent_id, started.payload.agent_name], [id, 'Senior researcher']);
});

test.run();
}
