-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A success's finalize written while its caller's reservations are under way in the worker
--   rides in their next CALL (google_ai_reserve_calls' p_finalizes, google_ai_finalize_riding: after the
--   bookings, waits of at most 5 ms, undone together on failure with the SQLSTATE answered): one commit and
--   one flush, and no second transaction taking the same counter row beside them
set check_function_bodies = off;

drop procedure if exists "public"."google_ai_reserve_calls"(IN p_calls jsonb, INOUT o_answers jsonb);

CREATE OR REPLACE FUNCTION public.google_ai_finalize_riding(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
$function$
;

CREATE OR REPLACE PROCEDURE public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb DEFAULT NULL::jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb, INOUT o_finalized jsonb DEFAULT NULL::jsonb)
 LANGUAGE plpgsql
AS $procedure$
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
    v_answers := v_answers || case when v_booked -> i ? 'alone' then v_booked -> i else
      (select pg_catalog.to_jsonb(r) from public.google_ai_reserve_reads(p_reservation => v_booked -> i,
         p_model => p_calls -> i -> 'models' ->> 0,
         p_exclude_key_ids => (select coalesce(pg_catalog.array_agg(e::uuid), '{}'::uuid[])
                               from pg_catalog.jsonb_array_elements_text(p_calls -> i -> 'exclude_key_ids') e)) r) end;
  end loop;
  o_answers := pg_catalog.to_jsonb(v_answers);
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_finalize_riding(p_calls jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_riding(p_calls jsonb) to eve_gateway;
grant execute on function public.google_ai_finalize_riding(p_calls jsonb) to service_role;
revoke all on procedure public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb, INOUT o_answers jsonb, INOUT o_finalized jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on procedure public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb, INOUT o_answers jsonb, INOUT o_finalized jsonb) to eve_gateway;
grant execute on procedure public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb, INOUT o_answers jsonb, INOUT o_finalized jsonb) to service_role;
