-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_finalize_calls: the finalizes that met in one worker, written in one transaction
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_open public.google_ai_attempts[] := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id in (select (e ->> 'reservation_id')::uuid
                                                         from pg_catalog.jsonb_array_elements(p_calls) e));
  v_answers jsonb[] := pg_catalog.array_fill(null::jsonb, array[pg_catalog.jsonb_array_length(p_calls)]);
  c record;
begin
  perform from public.google_ai_tokens t where t.id in (select a.token_id from unnest(v_open) a)
  order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select a.client_id from unnest(v_open) a)
  order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select x.*, e.n from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n)
    cross join lateral pg_catalog.jsonb_to_record(e.call) x(reservation_id uuid, outcome text, input_tokens integer,
      output_tokens integer, http_status integer, error_code text, quota_id text, error_message text,
      latency_ms integer, cooldown_until timestamptz, cooldown_until_pacific_midnight boolean, response jsonb,
      key_rejected boolean, quota_cause text, service_tier text, served_tier text, added_ms integer,
      first_byte_ms integer, room_requests integer, room_tokens integer, room_until timestamptz,
      settled_tokens integer, cached_input_tokens integer, thinking_tokens integer, cache_write_5m_tokens integer,
      cache_write_1h_tokens integer)
    left join unnest(v_open) a on a.reservation_id = x.reservation_id
    order by a.quota_group, a.model, e.n
  loop
    v_answers[c.n] := public.google_ai_finalize(c.reservation_id, c.outcome, c.input_tokens, c.output_tokens,
      c.http_status, c.error_code, c.quota_id, c.error_message, c.latency_ms, c.cooldown_until,
      coalesce(c.cooldown_until_pacific_midnight, false), c.response, c.key_rejected, c.quota_cause, c.service_tier,
      c.served_tier, c.added_ms, c.first_byte_ms, c.room_requests, c.room_tokens, c.room_until, c.settled_tokens,
      c.cached_input_tokens, c.thinking_tokens, c.cache_write_5m_tokens, c.cache_write_1h_tokens);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_finalize_calls(p_calls jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_calls(p_calls jsonb) to eve_gateway;
grant execute on function public.google_ai_finalize_calls(p_calls jsonb) to service_role;
