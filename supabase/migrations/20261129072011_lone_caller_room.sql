-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The provider-room margin no longer counts the answered call's own caller: llm-invoke
--   writes a success's finalize before the answer where little is left at the provider, and otherwise sends
--   the room less that caller's next call
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
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_room_until > v_now and p_att.quota_group is not null and p_room_requests = 0 and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  end if;
  if v_model.bucket_share is not null and v_rpm > 0 then
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_room_until - 60000.0 / v_model.rpm * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_room_until + v_step.tolerance;
  elsif p_room_until > v_now and p_att.quota_group is not null then
    -- (Out since: still on their way, or back since. Not only those still on their way: a caller whose
    -- answer is back may be admitting its next call now, which this count cannot see until it commits,
    -- and which will not see this rest; when the callers come back at once, all of them do. The answered
    -- call's own caller is not among them: its call is in the provider's count already, and its next
    -- call is either not made yet (this lands before the answer) or taken out of p_room_* already.)
    select 2 * count(*) filter (where f.out_since) + count(*) filter (where f.counted_since),
      coalesce(2 * sum(a.estimated_tokens) filter (where f.out_since), 0)
        + coalesce(sum(a.estimated_tokens) filter (where f.counted_since), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    cross join lateral (select a.id <> p_att.id and (a.status = 'reserved' or a.finished_at >= p_att.admitted_at),
      a.admitted_at > p_att.admitted_at) f(out_since, counted_since)
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
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;
