/**
 * Run transitions as functions, each one round trip: claiming a run for an attempt, and cancelling
 * a run that has not started. Frozen with migration 0004; db/runs.repository.ts calls them.
 *
 * Both lock the thread row before they touch the run, like every writer of a thread's runs and
 * events (recording a turn, appending a batch): one lock order everywhere, so they queue up
 * instead of deadlocking, and "which run may start" is decided under the thread's lock.
 */

/**
 * `new_id(prefix)`: an id like db/ids.ts makes (`<prefix>_` and 128 random bits, base64url), for
 * rows a function creates in numbers the caller cannot know in advance. The bits come from
 * gen_random_uuid() (a strong random source on every Postgres since 13, PGlite included): the
 * bytes of a version-4 UUID that are fully random, from three of them.
 */
export const NEW_ID_FUNCTION = `
create function new_id(prefix text) returns text
language sql volatile as $fn$
  select prefix || '_' || rtrim(translate(encode(substring(
    substring(uuid_send(gen_random_uuid()) from 1 for 6) ||
    substring(uuid_send(gen_random_uuid()) from 11 for 6) ||
    substring(uuid_send(gen_random_uuid()) from 11 for 6)
    from 1 for 16), 'base64'), '+/', '-_'), '=')
$fn$`;

/**
 * `cancel_queued_run(run)`: a queued run becomes cancelled with its one agent_completed (an empty
 * assistant message). Returns the stored event, or nothing when the run was not queued.
 */
export const CANCEL_QUEUED_RUN_FUNCTION = `
create function cancel_queued_run(p_run text)
returns table (thread_id text, seq int, payload jsonb)
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  v_thread text;
  v_message text := new_id('m');
begin
  select r.thread_id into v_thread from runs r where r.id = p_run;
  if not found then return; end if;
  perform 1 from threads t where t.id = v_thread for no key update;
  update runs r set status = 'cancelled', finished_at = clock_timestamp(), assistant_message_id = v_message
  where r.id = p_run and r.status = 'queued';
  if not found then return; end if;
  return query
  select v_thread, a.seq, a.payload
  from append_events(jsonb_build_array(jsonb_build_object(
    'idx', 0, 'thread_id', v_thread, 'run_id', p_run, 'type', 'agent_completed',
    'payload', jsonb_build_object(
      'thread_id', v_thread, 'run_id', p_run, 'status', 'cancelled',
      'message', jsonb_build_object('id', v_message, 'role', 'assistant', 'content', '', 'run_id', p_run))))) a;
end
$fn$`;

/**
 * `claim_run(run, takeover, from_attempt, stale_ms, message_id, start)`: claims a queued run for a
 * new attempt, or with `takeover` a run still marked running by an attempt that died (only from
 * `from_attempt` when given, only if its heartbeat is older than `stale_ms` when given). The run
 * starts only if no other run of its thread is running and none older is queued. Returns
 * `{kind: 'gone', status?}`, `{kind: 'wait'}` or `{kind: 'claimed', restarted, run, thread, agent}`
 * (rows as JSON). A takeover gets `message_id` as its new assistant message id; a first claim
 * keeps the run's id if it has one.
 *
 * With `start`, the claim is also the turn's first step, in the same round trip: the opening events
 * are appended (agent_started and agent_thinking, or for a takeover agent_thinking {restarted,
 * attempt, message_id}) and returned as `opened` (seq and payload, to publish), and the thread's
 * messages, oldest first, as `messages` (the model's context).
 */
export const CLAIM_RUN_FUNCTION = `
create function claim_run(p_run text, p_takeover boolean, p_from_attempt int, p_stale_ms double precision, p_message text, p_start boolean)
returns jsonb
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  v_thread_id text;
  v_thread threads;
  v_run runs;
  v_agent agents;
  v_taking_over boolean;
  v_opening jsonb;
  v_opened jsonb;
  v_messages jsonb;
begin
  select r.thread_id into v_thread_id from runs r where r.id = p_run;
  if not found then return jsonb_build_object('kind', 'gone'); end if;
  select * into v_thread from threads t where t.id = v_thread_id for update;
  if not found then return jsonb_build_object('kind', 'gone'); end if;
  -- Re-read under the thread lock: a cancel or another claim may have won meanwhile.
  select * into v_run from runs r where r.id = p_run;
  if not found then return jsonb_build_object('kind', 'gone'); end if;
  v_taking_over := coalesce(p_takeover, false) and v_run.status = 'running'
    and (p_from_attempt is null or v_run.attempt = p_from_attempt)
    and (p_stale_ms is null or
      coalesce(v_run.heartbeat_at, v_run.started_at, v_run.created_at) < clock_timestamp() - make_interval(secs => p_stale_ms / 1000));
  if v_run.status <> 'queued' and not v_taking_over then
    return jsonb_build_object('kind', 'gone', 'status', v_run.status);
  end if;
  if not v_taking_over and exists (
    select 1 from runs b
    where b.thread_id = v_run.thread_id and b.id <> p_run
      and (b.status = 'running' or (b.status = 'queued' and b.created_at < v_run.created_at))
  ) then
    return jsonb_build_object('kind', 'wait');
  end if;
  select * into strict v_agent from agents a where a.id = v_run.agent_id;
  update runs r
  set status = 'running',
      attempt = r.attempt + 1,
      started_at = clock_timestamp(),
      heartbeat_at = clock_timestamp(),
      assistant_message_id = case when v_taking_over then p_message else coalesce(r.assistant_message_id, p_message) end
  where r.id = p_run
  returning * into v_run;
  if coalesce(p_start, false) then
    v_opening := case when v_taking_over then
      jsonb_build_array(jsonb_build_object('idx', 0, 'thread_id', v_thread.id, 'run_id', p_run, 'type', 'agent_thinking',
        'fence_run', p_run, 'fence_attempt', v_run.attempt,
        'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run,
          'attempt', v_run.attempt, 'message_id', v_run.assistant_message_id, 'restarted', true)))
    else
      jsonb_build_array(
        jsonb_build_object('idx', 0, 'thread_id', v_thread.id, 'run_id', p_run, 'type', 'agent_started',
          'fence_run', p_run, 'fence_attempt', v_run.attempt,
          'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run, 'agent_id', v_agent.id, 'agent_name', v_agent.name)),
        jsonb_build_object('idx', 1, 'thread_id', v_thread.id, 'run_id', p_run, 'type', 'agent_thinking',
          'fence_run', p_run, 'fence_attempt', v_run.attempt,
          'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run)))
    end;
    select coalesce(jsonb_agg(jsonb_build_object('seq', a.seq, 'type', v_opening->a.idx->>'type', 'payload', a.payload) order by a.idx), '[]'::jsonb)
    into v_opened
    from append_events(v_opening) a;
    select coalesce(jsonb_agg(jsonb_build_object(
        'id', m.id, 'thread_id', m.thread_id, 'run_id', m.run_id, 'role', m.role, 'content', m.content,
        'tool_calls', m.tool_calls, 'tool_call_id', m.tool_call_id, 'client_message_id', m.client_message_id,
        'created_at', m.created_at) order by m.created_at, m.id), '[]'::jsonb)
    into v_messages
    from messages m where m.thread_id = v_thread.id;
  end if;
  return jsonb_build_object('kind', 'claimed', 'restarted', v_taking_over,
    'run', to_jsonb(v_run), 'thread', to_jsonb(v_thread), 'agent', to_jsonb(v_agent),
    'opened', v_opened, 'messages', v_messages);
end
$fn$`;
