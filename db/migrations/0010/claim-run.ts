/**
 * `claim_run(...)` as migration 0009 made it (see ../0009/claim-run.ts and ../0004/runs.ts), with
 * the job that claims: `p_job` is stored in runs.claimed_by with the new attempt, and a takeover
 * with `p_from_job` replaces only an attempt that job claimed (a re-delivery of a job whose worker
 * died never takes the run from a newer attempt that replaced it meanwhile). Frozen with migration
 * 0010.
 */
export const CLAIM_RUN_FUNCTION = `
create function claim_run(p_run text, p_takeover boolean, p_from_attempt int, p_stale_ms double precision, p_message text, p_start boolean, p_job text, p_from_job text)
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
    and (p_from_job is null or v_run.claimed_by = p_from_job)
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
      claimed_by = p_job,
      assistant_message_id = case when v_taking_over then p_message else coalesce(r.assistant_message_id, p_message) end
  where r.id = p_run
  returning * into v_run;
  if coalesce(p_start, false) then
    -- The thread's row is locked and the run just claimed: the opening events go in directly.
    v_opening := case when v_taking_over then
      jsonb_build_array(jsonb_build_object('run_id', p_run, 'type', 'agent_thinking',
        'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run,
          'attempt', v_run.attempt, 'message_id', v_run.assistant_message_id, 'restarted', true)))
    else
      jsonb_build_array(
        jsonb_build_object('run_id', p_run, 'type', 'agent_started',
          'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run, 'agent_id', v_agent.id, 'agent_name', v_agent.name)),
        jsonb_build_object('run_id', p_run, 'type', 'agent_thinking',
          'payload', jsonb_build_object('thread_id', v_thread.id, 'run_id', p_run)))
    end;
    select coalesce(jsonb_agg(jsonb_build_object('seq', a.seq, 'type', v_opening->a.idx->>'type', 'payload', a.payload) order by a.idx), '[]'::jsonb)
    into v_opened
    from insert_thread_events(v_thread.id, v_opening, false) a;
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