/**
 * `append_events(batch jsonb)`: appends a batch of thread events in one statement, the write path
 * of the group-committed event log (events/group-commit-log.ts). Frozen with migration 0004.
 *
 * Input: a JSON array of event_batch_item without `refused` and `seq`. Output: one row per input
 * item, by `idx`: its `seq` and stored `payload`, or why it was `refused` ('thread_gone', 'fenced').
 * For an item that finished its run, `next_run` is the thread's oldest queued run (to wake).
 *
 * Why it is shaped this way:
 * - The touched threads are locked first, once each, in id order (FOR NO KEY UPDATE, the lock the
 *   last_seq update takes anyway): batches, claims and sends that meet on the same threads queue up
 *   instead of deadlocking, and no other attempt can claim a run of these threads until commit.
 * - Every later statement of a plpgsql function gets a fresh snapshot, so the fence (the run still
 *   belongs to the attempt that wrote the item) and the thread's existence are checked after the
 *   locks are held: a claim that committed while the batch waited is seen, and refuses the stale
 *   attempt's items. A refused item takes no seq and does not fail the others.
 * - Each touched thread's last_seq goes up once, by its count of items: last_seq is in no index, so
 *   this is a HOT update. updated_at (in threads_owner_idx) moves only when the batch stores a
 *   message for the thread (a user's message_created, a run's answer), not on every event (nor
 *   on a queued run's cancellation, which stores no message).
 * - Seqs follow the input order within a thread, and the stored payload gets its seq and timestamp
 *   here, so the returned payload is byte for byte what is sent.
 * - An item may carry a message of its run (tool calls, a tool result, the final answer) and the
 *   run's outcome (`finish`): stored in the same transaction as the event, so an agent_completed is
 *   never stored without its run being finished, and the reverse.
 */
export const APPEND_EVENTS_TYPE = `
create type event_batch_item as (
  idx int,
  thread_id text,
  run_id text,
  type text,
  payload jsonb,
  fence_run text,
  fence_attempt int,
  message jsonb,
  finish jsonb,
  refused text,
  seq int
)`;

export const APPEND_EVENTS_FUNCTION = `
create function append_events(batch jsonb)
returns table (idx int, seq int, payload jsonb, refused text, next_run text)
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  items event_batch_item[];
  with_messages boolean;
  to_finish int;
  finished int;
begin
  -- The items as an array first: the planner reckons with a handful of rows from unnest (a JSON
  -- set-returning function counts as 100), so the lookups below probe the primary keys instead of
  -- scanning the tables.
  items := array(select i from jsonb_populate_recordset(null::event_batch_item, batch) i);

  perform 1 from threads t
  where t.id = any(array(select i.thread_id from unnest(items) i))
  order by t.id
  for no key update;

  -- A new statement, so a new snapshot: taken with the locks held.
  with checked as (
    select i.idx, i.thread_id, i.run_id, i.type, i.payload, i.fence_run, i.fence_attempt, i.message, i.finish,
      case
        when t.id is null then 'thread_gone'
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
