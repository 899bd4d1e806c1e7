/**
 * `append_events(batch jsonb, write_id text default null, wait boolean default true)`: migration 0004's function (see
 * ../0004/append-events.ts for why it is shaped as it is), with two changes. Frozen with
 * migration 0007.
 *
 * - `wait`: false for the group-committed batches. A thread whose row another transaction holds
 *   is skipped (SKIP LOCKED), its items come back refused as 'busy', and the rest of the batch is
 *   stored: one locked thread no longer holds every other thread's events until the lock goes (or
 *   the statement timeout ends the whole batch). The skipped items are written again on their own
 *   with `wait` true, which waits for the lock as before.
 * - `write_id`: a fresh id per call, stored in event_writes first. A writer that lost the answer
 *   to a write voids its id (void_event_write) before it looks for what the write stored and
 *   writes again; a late copy of the lost write (held up in the network, arriving after the
 *   retry) then fails on that id and stores nothing, so nothing is stored twice.
 */
export const APPEND_EVENTS_FUNCTION = `
create function append_events(batch jsonb, write_id text default null, wait boolean default true)
returns table (idx int, seq int, payload jsonb, refused text, next_run text)
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  items event_batch_item[];
  with_messages boolean;
  to_finish int;
  finished int;
  locked text[];
begin
  -- First, the write's id: a late copy of a write whose writer gave it up for lost (and voided its
  -- id, see void_event_write) fails here, before it touches anything. The functions of migration
  -- 0004 that append inside their own work (record_turn, claim_run, cancel_queued_run) call
  -- append_events(batch) as before: no id, and they wait.
  if write_id is not null then
    insert into event_writes (id) values (write_id);
  end if;

  -- The items as an array first: the planner reckons with a handful of rows from unnest (a JSON
  -- set-returning function counts as 100), so the lookups below probe the primary keys instead of
  -- scanning the tables.
  items := array(select i from jsonb_populate_recordset(null::event_batch_item, batch) i);

  if wait then
    perform 1 from threads t
    where t.id = any(array(select i.thread_id from unnest(items) i))
    order by t.id
    for no key update;
  else
    -- A thread another transaction holds is skipped, not waited for: its items come back 'busy'
    -- and are written again on their own (with wait), while the rest of the batch goes on.
    select coalesce(array_agg(l.id), '{}') into locked from (
      select t.id from threads t
      where t.id = any(array(select i.thread_id from unnest(items) i))
      order by t.id
      for no key update skip locked
    ) l;
  end if;

  -- A new statement, so a new snapshot: taken with the locks held.
  with checked as (
    select i.idx, i.thread_id, i.run_id, i.type, i.payload, i.fence_run, i.fence_attempt, i.message, i.finish,
      case
        when t.id is null then 'thread_gone'
        when not wait and not (i.thread_id = any(locked)) then 'busy'
        when i.fence_run is not null and r.id is null then 'fenced'
      end as refused
    from unnest(items) i
    left join threads t on t.id = i.thread_id
    left join runs r on r.id = i.fence_run and r.attempt = i.fence_attempt and r.status = 'running'
  ), counts as (
    select c.thread_id, count(*)::int as n, bool_or(c.type = 'message_created' or c.message is not null) as active
    from checked c
    where c.refused is null
    group by c.thread_id
  ), bumped as (
    update threads t
    set last_seq = t.last_seq + cnt.n,
        updated_at = case when cnt.active then clock_timestamp() else t.updated_at end
    from counts cnt
    where t.id = cnt.thread_id
    returning t.id, t.last_seq - cnt.n as base
  ), numbered as (
    select c.idx, row_number() over (partition by c.thread_id order by c.idx)::int as k
    from checked c
    where c.refused is null
  )
  select
    array_agg(row(c.idx, c.thread_id, c.run_id, c.type, c.payload, c.fence_run, c.fence_attempt, c.message, c.finish,
      c.refused, b.base + num.k)::event_batch_item order by c.idx),
    coalesce(bool_or(c.message is not null and c.refused is null), false),
    count(*) filter (where c.finish is not null and c.refused is null)
  into items, with_messages, to_finish
  from checked c
  left join numbered num on num.idx = c.idx
  left join bumped b on b.id = c.thread_id and c.refused is null;

  if with_messages then
    insert into messages (id, thread_id, run_id, role, content, tool_calls, tool_call_id, client_message_id)
    select i.message->>'id', i.thread_id, coalesce(i.fence_run, i.run_id), i.message->>'role', i.message->>'content',
      nullif(i.message->'tool_calls', 'null'::jsonb), i.message->>'tool_call_id', null
    from unnest(items) i
    where i.refused is null and i.message is not null
    order by i.idx
    on conflict (id) do nothing;
  end if;

  if to_finish > 0 then
    update runs r
    set status = i.finish->>'status',
        error = nullif(i.finish->'error', 'null'::jsonb),
        usage = nullif(i.finish->'usage', 'null'::jsonb),
        finished_at = clock_timestamp()
    from unnest(items) i
    where i.refused is null and i.finish is not null
      and r.id = i.fence_run and r.attempt = i.fence_attempt and r.status = 'running';
    get diagnostics finished = row_count;
    -- Cannot happen while the fence holds (checked above, under the thread lock); if it does, no
    -- agent_completed may be stored without its run finished: the whole batch fails.
    if finished <> to_finish then
      raise exception 'append_events: % of % runs to finish were not running under their attempt', to_finish - finished, to_finish;
    end if;
  end if;

  return query
  with stored as (
    insert into events (thread_id, seq, run_id, type, payload)
    select i.thread_id, i.seq, i.run_id, i.type,
      i.payload || jsonb_build_object(
        'seq', i.seq,
        'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    from unnest(items) i
    where i.refused is null
    order by i.idx
    returning events.thread_id, events.seq, events.payload
  )
  select i.idx, s.seq, s.payload, i.refused,
    case when i.finish is not null and i.refused is null then
      -- Ordered as runs_thread_idx is, so that index finds it (not a scan of every queued run).
      (select q.id from runs q where q.thread_id = i.thread_id and q.status = 'queued' order by q.thread_id, q.created_at, q.id limit 1)
    end
  from unnest(items) i
  left join stored s on s.thread_id = i.thread_id and s.seq = i.seq
  order by i.idx;
end
$fn$`;
