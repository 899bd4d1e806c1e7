/**
 * `insert_thread_events(p_thread text, p_events jsonb, p_touch boolean)`: appends events to a
 * thread whose row the caller's transaction already holds (record_turn, claim_run), with none of
 * append_events' batch machinery: no fence to check (the caller just created or claimed the run),
 * no thread that can have vanished (its row is locked), one thread. The thread's last_seq goes up
 * once by the number of events; `p_touch` moves its updated_at too (a stored message). Each item of
 * `p_events` is `{run_id, type, payload}`; the stored payload gets its seq and timestamp, as
 * append_events gives it. Returns each event's position in `p_events` (idx, from 0), seq and
 * stored payload. Frozen with migration 0009.
 */
export const INSERT_THREAD_EVENTS_FUNCTION = `
create function insert_thread_events(p_thread text, p_events jsonb, p_touch boolean)
returns table (idx int, seq int, payload jsonb)
language plpgsql volatile as $fn$
#variable_conflict use_column
declare
  v_count int := jsonb_array_length(p_events);
  v_base int;
  v_now timestamptz := clock_timestamp();
begin
  update threads t
  set last_seq = t.last_seq + v_count,
      updated_at = case when p_touch then v_now else t.updated_at end
  where t.id = p_thread
  returning t.last_seq - v_count into v_base;
  return query
  with stored as (
    insert into events (thread_id, seq, run_id, type, payload)
    select p_thread, v_base + e.ord::int, e.item->>'run_id', e.item->>'type',
      (e.item->'payload') || jsonb_build_object(
        'seq', v_base + e.ord::int,
        'timestamp', to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    from jsonb_array_elements(p_events) with ordinality as e(item, ord)
    order by e.ord
    returning events.seq, events.payload
  )
  select (s.seq - v_base - 1)::int, s.seq, s.payload from stored s order by s.seq;
end
$fn$`;
