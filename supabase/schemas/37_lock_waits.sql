-- Waits for a lock, and the one place none is allowed: a later reservation of a batch
-- (google_ai_reserve_many, 85_reserve_call.sql, sets eve.batch_member for them). Its transaction already holds
-- an earlier reservation's counter row; a wait for another transaction's lock there would break the global
-- lock order (docs/architecture.md, §2) and could close a ring with it. So such a reservation takes a counter
-- row (google_ai_counter_locked) or an advisory lock (below) only if it is free, else raises lock_not_available
-- (55P03): the batch undoes that reservation alone and the worker makes it again by itself.
set check_function_bodies = off;

-- A transaction's advisory lock on p_key, as pg_advisory_xact_lock takes it; in a batch's later
-- reservation, only if it is free (above).
CREATE OR REPLACE FUNCTION public.google_ai_advisory_lock(p_key bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
  if pg_catalog.current_setting('eve.batch_member', true) is distinct from 'on' then
    perform pg_catalog.pg_advisory_xact_lock(p_key);
  elsif not pg_catalog.pg_try_advisory_xact_lock(p_key) then
    raise exception 'an advisory lock another transaction holds' using errcode = '55P03';
  end if;
end
$$;

