/**
 * `record_turn(...)` as migration 0004 made it (see ../0004/record-turn.ts for what it does and
 * why), except that its `message_created` event is written by insert_thread_events instead of
 * append_events. Frozen with migration 0009.
 */
export const RECORD_TURN_FUNCTION = `
create or replace function record_turn(
  p_workspace text, p_user text, p_thread text, p_agent text, p_default_agent text,
  p_content text, p_title text, p_client_message_id text, p_on_busy text, p_max_active_runs int,
  p_new_thread text, p_message text, p_run text)
returns jsonb
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  v_thread text := p_thread;
  v_agent text;
  v_policy text;
  v_earlier jsonb;
  v_cancelled jsonb := '[]'::jsonb;
  v_interrupt text[] := '{}';
  v_active record;
  v_event record;
  v_count bigint;
  v_created timestamptz;
begin
  if p_client_message_id is not null then
    perform pg_advisory_xact_lock(hashtextextended(p_workspace || chr(31) || p_user || chr(31) || p_client_message_id, 0));
    select jsonb_build_object('thread_id', m.thread_id, 'message_id', m.id, 'run_id', r.id, 'from_seq', e.seq, 'deduplicated', true)
    into v_earlier
    from messages m
    join threads t on t.id = m.thread_id
    join runs r on r.id = m.run_id and r.user_message_id = m.id
    join events e on e.thread_id = m.thread_id and e.run_id = r.id and e.type = 'message_created'
    where m.client_message_id = p_client_message_id
      and t.workspace_id = p_workspace and t.user_id = p_user
      and (p_thread is null or m.thread_id = p_thread)
    limit 1;
    if v_earlier is not null then return v_earlier; end if;
  end if;

  if v_thread is not null then
    select t.agent_id into v_agent from threads t
    where t.id = v_thread and t.workspace_id = p_workspace and t.user_id = p_user
    for update;
    if not found then
      raise exception using errcode = 'CVR01', detail = 'not_found', message = format('Thread %s was not found.', v_thread);
    end if;
    if p_agent is not null and p_agent <> v_agent then
      raise exception using errcode = 'CVR01', detail = 'conflict', message = format('Thread %s is bound to agent %s.', v_thread, v_agent);
    end if;
    if exists (select 1 from runs r where r.thread_id = v_thread and r.status in ('queued', 'running')) then
      select coalesce(p_on_busy, a.busy_policy) into strict v_policy from agents a where a.id = v_agent;
      if v_policy = 'reject' then
        raise exception using errcode = 'CVR01', detail = 'thread_busy', message = format(
          'A run is already active on thread %s; send again when it completes, or use on_busy "enqueue" or "interrupt".', v_thread);
      end if;
      if v_policy = 'interrupt' then
        for v_active in
          select r.id, r.status from runs r
          where r.thread_id = v_thread and r.status in ('queued', 'running')
          order by r.created_at
        loop
          if v_active.status = 'queued' then
            select c.seq, c.payload into v_event from cancel_queued_run(v_active.id) c;
            if found then
              v_cancelled := v_cancelled || jsonb_build_array(jsonb_build_object('type', 'agent_completed', 'seq', v_event.seq, 'payload', v_event.payload));
              continue;
            end if;
          end if;
          v_interrupt := v_interrupt || v_active.id;
        end loop;
      end if;
    end if;
  else
    select a.id into v_agent from agents a
    where a.id = coalesce(p_agent, p_default_agent) and a.deleted_at is null
      and (a.workspace_id = p_workspace or a.workspace_id is null);
    if not found then
      raise exception using errcode = 'CVR01', detail = 'not_found', message = format('Agent %s was not found.', coalesce(p_agent, p_default_agent));
    end if;
    v_thread := p_new_thread;
    insert into threads (id, workspace_id, user_id, agent_id, title, archived_at)
    values (v_thread, p_workspace, p_user, v_agent, p_title, null);
  end if;

  if coalesce(p_max_active_runs, 0) > 0 then
    perform pg_advisory_xact_lock(hashtextextended('active-runs' || chr(31) || p_workspace || chr(31) || p_user, 0));
    select count(*) into v_count from runs r
    where r.workspace_id = p_workspace and r.user_id = p_user and r.status in ('queued', 'running');
    if v_count >= p_max_active_runs then
      raise exception using errcode = 'CVR01', detail = 'rate_limited',
        message = format('Too many active runs: at most %s queued or running per user.', p_max_active_runs);
    end if;
  end if;

  insert into messages (id, thread_id, run_id, role, content, tool_calls, tool_call_id, client_message_id)
  values (p_message, v_thread, p_run, 'user', p_content, null, null, p_client_message_id)
  returning created_at into v_created;
  insert into runs (id, thread_id, workspace_id, user_id, agent_id, status, user_message_id)
  values (p_run, v_thread, p_workspace, p_user, v_agent, 'queued', p_message);
  -- The thread's row is locked (or was just inserted) by this transaction: the event goes in directly.
  select a.seq, a.payload into strict v_event
  from insert_thread_events(v_thread, jsonb_build_array(jsonb_build_object(
    'run_id', p_run, 'type', 'message_created',
    'payload', jsonb_build_object(
      'thread_id', v_thread, 'run_id', p_run,
      'message', jsonb_build_object(
        'id', p_message, 'role', 'user', 'content', p_content, 'run_id', p_run,
        'created_at', to_char(v_created at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))))), true) a;
  return jsonb_build_object(
    'thread_id', v_thread, 'message_id', p_message, 'run_id', p_run, 'from_seq', v_event.seq, 'deduplicated', false,
    'event', jsonb_build_object('type', 'message_created', 'seq', v_event.seq, 'payload', v_event.payload),
    'cancelled', v_cancelled, 'interrupt', to_jsonb(v_interrupt));
end
$fn$`;
