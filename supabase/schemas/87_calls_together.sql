-- Reservations that met in a worker (google_ai_reserve_many, 85_reserve_call.sql) in one CALL, and the
-- successes' finalizes that ride with them (google_ai_finalize_calls, 86_finalize_call.sql): written while a
-- worker's reservations are under way, a finalize goes in their next CALL (store/pg-store.ts) rather than in
-- one of its own, which would take the same counter row beside them and flush the WAL a second time.
set check_function_bodies = off;

-- Finalizes written in a transaction that already holds the reservations' rows (google_ai_reserve_calls):
-- google_ai_finalize_calls' calls and answer, or, when they failed, undone together (their own
-- subtransaction) so the reservations stand, {"error": its SQLSTATE}: the worker then writes them by
-- themselves. They are the reservations' caller's (store/riders.ts), whose token, client and budget rows
-- the transaction holds already; their other locks (their attempt rows, a counter row the reservations did
-- not book) come after the reservations' counter rows, against the global order (docs/architecture.md, §2),
-- so no wait here is longer than 5 ms (lock_timeout, put back before it answers): a wait in a ring with
-- another transaction ends there, and the counter rows held meanwhile are held no longer for it.
CREATE OR REPLACE FUNCTION public.google_ai_finalize_riding(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
declare
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_answers jsonb;
begin
  perform pg_catalog.set_config('lock_timeout', '5ms', true);
  begin
    v_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  exception when others then
    v_answers := pg_catalog.jsonb_build_object('error', sqlstate);
  end;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
  return v_answers;
end
$$;

-- The call llm-invoke makes for reservations that met (google_ai_reserve_many): as google_ai_reserve_call
-- makes one, the booking committed without waiting for the disk, then each answer's reads
-- (google_ai_reserve_reads), then one flush that covers them all; called alone, as it is. o_answers:
-- one {o_reservation, o_quota, o_cause} per call, in their order; a call answered {"alone": true} is
-- answered so, unread. p_finalizes: successes' finalizes of the same caller that ride with them
-- (google_ai_finalize_riding, after the bookings, in the same commit and flush); o_finalized their answers,
-- or {"error": SQLSTATE} when they failed, or null when none rode.
CREATE OR REPLACE PROCEDURE public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb DEFAULT NULL::jsonb,
    INOUT o_answers jsonb DEFAULT NULL::jsonb, INOUT o_finalized jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting and v_lsn are assigned and never read by design, as in google_ai_reserve_call.)
declare
  v_setting text;
  v_lsn pg_lsn;
  v_booked jsonb;
  v_answers jsonb[] := '{}'::jsonb[];
begin
  v_setting := pg_catalog.set_config('synchronous_commit', 'off', true);
  v_booked := public.google_ai_reserve_many(p_calls => p_calls);
  if p_finalizes is not null then
    o_finalized := public.google_ai_finalize_riding(p_calls => p_finalizes);
  end if;
  commit;
  for i in 0 .. pg_catalog.jsonb_array_length(v_booked) - 1 loop
    -- (Expressions, not queries: a query's executor start costs more than its work here.)
    v_answers := v_answers || case when v_booked -> i ? 'alone' then v_booked -> i else
      pg_catalog.to_jsonb(public.google_ai_reserve_reads(p_reservation => v_booked -> i,
        p_model => p_calls -> i -> 'models' ->> 0,
        p_exclude_key_ids => coalesce((pg_catalog.jsonb_populate_record(null::public.google_ai_reservation,
          p_calls -> i)).exclude_key_ids, '{}'::uuid[]))) end;
  end loop;
  o_answers := pg_catalog.to_jsonb(v_answers);
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;
