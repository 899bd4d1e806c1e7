/**
 * `append_events(batch jsonb, write_id text, wait boolean)` as migration 0007 made it
 * (../0007/append-events.ts; the design: ../0004/append-events.ts), with its lookups of the batch's
 * threads and fenced runs written as one primary-key probe per item (a LATERAL subquery with a
 * LIMIT or a locking clause, which the planner cannot turn into a join) instead of joins.
 *
 * The joins relied on the planner's estimate of a handful of rows from `unnest(items)` to probe
 * the primary keys. Under the generic plans these functions run with (migration 0006), the plan
 * is made once per connection from the tables' statistics at that moment, and while the threads
 * and runs tables were small (a new install, the first hours of a deployment, a benchmark) that
 * plan was a sequential scan of threads to lock the batch's threads and a hash join over all of
 * threads and runs to check them: every batch read every row, and kept doing so as the tables
 * grew until an ANALYZE made the connection plan again. Measured on one connection, backend CPU per
 * delta in batches of 50: 215 µs before, 80 after, with 2,000 running runs; 202 and 70 when the
 * plans were made on 20 runs and the tables then grew to 1,000; 71 and 52 when one batch covers
 * all of 100 threads (docs/benchmark.md, third round).
 *
 * Each probe names the primary key alone (a fenced run's attempt and status are checked on the
 * row it finds), and the migration turns sequential scans off for the function
 * (`enable_seqscan = off`, as its generic-plan setting is set): a plan made while a table was tiny
 * would otherwise probe it by scanning it, or by the partial index of every running run, once per
 * item, and keep doing so after the table grew. Every table access in the function is by key.
 *
 * The locks are still taken in the threads' id order (the nested loop follows the sorted ids), so
 * two batches never wait for each other's threads in opposite orders. Written as these edits of
 * 0007's frozen text, and so frozen with migration 0012.
 */
import { APPEND_EVENTS_FUNCTION as APPEND_EVENTS_0007 } from '../0007/append-events.js';
import { edited } from '../edited.js';

export const APPEND_EVENTS_FUNCTION = edited('0012', APPEND_EVENTS_0007, [
  ['create function append_events(', 'create or replace function append_events('],
  [
    `  if wait then
    perform 1 from threads t
    where t.id = any(array(select i.thread_id from unnest(items) i))
    order by t.id
    for no key update;
  else`,
    `  if wait then
    perform 1 from (select distinct i.thread_id as id from unnest(items) i order by 1) x
    cross join lateral (select t.id from threads t where t.id = x.id for no key update) l;
  else`,
  ],
  [
    `    select coalesce(array_agg(l.id), '{}') into locked from (
      select t.id from threads t
      where t.id = any(array(select i.thread_id from unnest(items) i))
      order by t.id
      for no key update skip locked
    ) l;`,
    `    select coalesce(array_agg(l.id order by l.id), '{}') into locked
    from (select distinct i.thread_id as id from unnest(items) i order by 1) x
    cross join lateral (select t.id from threads t where t.id = x.id for no key update skip locked) l;`,
  ],
  [
    `        when i.fence_run is not null and r.id is null then 'fenced'`,
    `        when i.fence_run is not null and (r.id is null or r.attempt <> i.fence_attempt or r.status <> 'running') then 'fenced'`,
  ],
  [
    `    left join threads t on t.id = i.thread_id
    left join runs r on r.id = i.fence_run and r.attempt = i.fence_attempt and r.status = 'running'`,
    `    left join lateral (select t.id from threads t where t.id = i.thread_id limit 1) t on true
    left join lateral (select r.id, r.attempt, r.status from runs r where r.id = i.fence_run limit 1) r on true`,
  ],
]);
