-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the provider-room rest also counts the admissions since the call
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
  v_counted integer;
begin
  if p_room_until > v_now and p_att.quota_group is not null then
    select 2 * count(*) filter (where a.status = 'reserved')
        + count(*) filter (where a.admitted_at > p_att.admitted_at),
      coalesce(2 * sum(a.estimated_tokens) filter (where a.status = 'reserved'), 0)
        + coalesce(sum(a.estimated_tokens) filter (where a.admitted_at > p_att.admitted_at), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
    if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      p_att.day_bucket, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;
