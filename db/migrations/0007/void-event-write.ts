/**
 * `void_event_write(write_id text) returns boolean`: settles what became of a write whose answer
 * was lost. True: it never committed, and now never will (its id is taken by this void, so a late
 * copy of it fails on its first statement). False: it committed (its events are stored). A write
 * still running when this is called is waited for (the insert waits on its uncommitted id).
 * Frozen with migration 0007.
 */
export const VOID_EVENT_WRITE_FUNCTION = `
create function void_event_write(write_id text)
returns boolean
language plpgsql volatile as $fn$
declare
  voided boolean;
begin
  insert into event_writes (id, void) values (write_id, true) on conflict (id) do nothing;
  -- A new statement, so a new snapshot: a write that committed while the insert waited is seen.
  select w.void into voided from event_writes w where w.id = write_id;
  return voided;
end
$fn$`;
