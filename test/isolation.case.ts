import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from './support/stack.js';
import type { TestClient } from './support/client.js';
import { RestClient } from './support/rest-client.js';
import { connect, useStack, type StackCtx } from './support/fixture.js';

interface Answer {
  code: string;
  message: string;
  status?: number;
  body: unknown;
}

/** One thread operation as an intruder would try it; answers the error it got. */
type Attempt = (threadId: string, runId: string) => Promise<Answer>;

const SECRETS = ['Secret merger plans', 'Confidential', 'aardvark', 'Keep talking'];

/**
 * Another user of the same workspace, and a user with the same `sub` in another workspace, try
 * every thread operation on someone's thread over WebSocket and REST: each gets exactly what a
 * missing thread gets, learns nothing, and changes nothing (isolation.redis.test.ts,
 * isolation.embedded.test.ts).
 */
export function isolationSuite(backend: Backend): void {
const test = suite<StackCtx>(`isolation (${backend})`);
useStack(test, { backend });

function wsAttempts(client: TestClient): Record<string, Attempt> {
  const error = async (type: string, payload: object): Promise<Answer> => {
    const frame = await client.request(type, payload);
    assert.equal(frame.type, 'error', `${type} must fail: ${JSON.stringify(frame)}`);
    return { code: frame.payload.code, message: frame.payload.message, body: frame.payload };
  };
  return {
    'thread.get': (thread_id) => error('thread.get', { thread_id }),
    'thread.history': (thread_id) => error('thread.history', { thread_id }),
    'thread.update title': (thread_id) => error('thread.update', { thread_id, title: 'pwned' }),
    'thread.update archived': (thread_id) => error('thread.update', { thread_id, archived: true }),
    'thread.delete': (thread_id) => error('thread.delete', { thread_id }),
    'message.send': (thread_id) => error('message.send', { thread_id, content: 'intruder was here' }),
    'thread.subscribe': (thread_id) => error('thread.subscribe', { thread_id, after_seq: 0 }),
    'run.cancel': (_thread_id, run_id) => error('run.cancel', { run_id }),
  };
}

function restAttempts(rest: RestClient): Record<string, Attempt> {
  const error = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<Answer> => {
    const res = await rest.call(method, path, body);
    assert.ok(res.status >= 400, `${method} ${path} must fail: ${res.status} ${JSON.stringify(res.body)}`);
    return { code: res.body.code, message: res.body.message, status: res.status, body: res.body };
  };
  return {
    'GET thread': (id) => error('GET', `/v1/threads/${id}`),
    'GET history': (id) => error('GET', `/v1/threads/${id}/history`),
    'PATCH title': (id) => error('PATCH', `/v1/threads/${id}`, { title: 'pwned' }),
    'PATCH archived': (id) => error('PATCH', `/v1/threads/${id}`, { archived: true }),
    DELETE: (id) => error('DELETE', `/v1/threads/${id}`),
    'POST message': (id) => error('POST', `/v1/threads/${id}/messages`, { content: 'intruder was here' }),
    'GET events (long-poll)': (id) => error('GET', `/v1/threads/${id}/events?after_seq=0&wait_ms=2000`),
    'POST cancel': (_id, runId) => error('POST', `/v1/runs/${runId}/cancel`),
  };
}

for (const transport of ['ws', 'rest'] as const) {
  test(`${transport}: a colleague and another workspace get not_found for every thread operation, see nothing, change nothing`, async (ctx) => {
    const owner = await connect(ctx, 'owner', 'acme');
    const created = await owner.request('thread.create', { title: 'Secret merger plans' });
    assert.equal(created.type, 'ack');
    const thread_id: string = created.payload.id;
    const first = await owner.request('message.send', { thread_id, content: 'Confidential: the code word is aardvark' });
    assert.equal((await owner.completed(first.payload.run_id)).payload.status, 'completed');
    // A turn still streaming while the intruders try: their cancel must not touch it.
    const second = await owner.request('message.send', { thread_id, content: 'Keep talking [[words:80]] [[delay:40]]' });
    const run_id: string = second.payload.run_id;
    await owner.next((f) => f.type === 'agent_thinking' && f.payload.run_id === run_id);
    const before = (await owner.request('thread.get', { thread_id })).payload;

    const intruders = [
      { who: 'colleague in the same workspace', sub: 'colleague', workspace: 'acme' },
      { who: 'the same sub in another workspace', sub: 'owner', workspace: 'other-corp' },
    ];
    const seen: unknown[] = [];
    for (const intruder of intruders) {
      let wsClient: TestClient | undefined;
      let attempts: Record<string, Attempt>;
      if (transport === 'ws') {
        wsClient = await connect(ctx, intruder.sub, intruder.workspace);
        attempts = wsAttempts(wsClient);
      } else {
        attempts = restAttempts(new RestClient(ctx.base, await ctx.stack.token(intruder.sub, intruder.workspace)));
      }
      for (const [name, attempt] of Object.entries(attempts)) {
        const started = Date.now();
        const onTheirs = await attempt(thread_id, run_id);
        const elapsed = Date.now() - started;
        const onNothing = await attempt('t_missing_0000000000000', 'r_missing_0000000000000');
        seen.push(onTheirs.body);
        const label = `${intruder.who}, ${name}`;
        assert.equal(onTheirs.code, 'not_found', `${label}: ${JSON.stringify(onTheirs.body)}`);
        assert.equal(onTheirs.status, onNothing.status, `${label}: same status as a missing thread`);
        assert.equal(
          onTheirs.message.replace(thread_id, '<id>').replace(run_id, '<id>'),
          onNothing.message.replace('t_missing_0000000000000', '<id>').replace('r_missing_0000000000000', '<id>'),
          `${label}: the same message as for a missing thread`,
        );
        assert.ok(elapsed < 1500, `${label}: answered at once, without waiting (${elapsed} ms)`);
      }
      // Their own views hold nothing of it either.
      if (wsClient) {
        const list = await wsClient.request('thread.list', {});
        const found = await wsClient.request('search', { q: 'aardvark' });
        assert.equal([list.payload.threads, found.payload.results], [[], []]);
      } else {
        const rest = new RestClient(ctx.base, await ctx.stack.token(intruder.sub, intruder.workspace));
        const list = await rest.get('/v1/threads');
        const found = await rest.get('/v1/search?q=aardvark');
        assert.equal([list.status, list.body.threads, found.status, found.body.results], [200, [], 200, []]);
        seen.push(list.body, found.body);
      }
    }

    assert.not.ok(
      owner.frames.some((f) => f.type === 'agent_completed' && f.payload.run_id === run_id),
      'the run was still streaming through every attempt (make it slower if this fails)',
    );
    const done = await owner.completed(run_id, 20_000);
    assert.equal(done.payload.status, 'completed', 'the intruders could not cancel the run');
    for (const client of ctx.clients.slice(1)) {
      await client.request('ping', {});
      assert.equal(client.events(thread_id), [], 'no event of the thread reached an intruder socket');
      seen.push(client.frames);
    }
    const leaked = JSON.stringify(seen);
    for (const secret of [...SECRETS, done.payload.message.content.slice(0, 40)]) {
      assert.not.ok(leaked.includes(secret), `nothing an intruder got contains ${JSON.stringify(secret)}`);
    }

    // The owner's thread is as the owner left it.
    const after = (await owner.request('thread.get', { thread_id })).payload;
    assert.equal(
      { ...after, last_seq: 0, updated_at: 0 },
      { ...before, last_seq: 0, updated_at: 0 },
      'title, archived, agent unchanged',
    );
    assert.equal(after.title, 'Secret merger plans');
    assert.is(after.archived, false);
    const history = (await owner.request('thread.history', { thread_id, limit: 500 })).payload;
    assert.equal(history.events.length, after.last_seq);
    assert.ok(history.events.every((e: any) => e.payload.run_id === first.payload.run_id || e.payload.run_id === run_id));
    assert.not.ok(JSON.stringify(history).includes('intruder was here') || JSON.stringify(history).includes('pwned'));
    const messages = await ctx.stack.db.selectFrom('messages').select(['role', 'content']).where('thread_id', '=', thread_id).orderBy('created_at').execute();
    assert.equal(messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    const runs = await ctx.stack.db.selectFrom('runs').select(['id', 'status']).where('thread_id', '=', thread_id).orderBy('created_at').execute();
    assert.equal(runs, [{ id: first.payload.run_id, status: 'completed' }, { id: run_id, status: 'completed' }]);
    const ownerList = (await owner.request('thread.list', {})).payload.threads.map((t: any) => t.id);
    assert.ok(ownerList.includes(thread_id), 'still in the owner\'s default list (not archived, not deleted)');
  });
}

test.run();
}
