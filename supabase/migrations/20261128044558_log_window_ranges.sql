-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The log's window statements (finalize's count of calls in flight, the queue's higher
--   classes' count, a TPM refusal's recheck) read the window as a range closed on both sides, so their
--   generic plans walk the window's index on the owner's log
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_higher_taken(p_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rank smallint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (select count(*) from public.google_ai_attempts a
          join public.google_ai_priority_classes pc on pc.name = a.priority_class
          where a.quota_group = p_group and a.model = p_model
            and a.admitted_at > p_now - p_window and a.admitted_at < 'infinity'
            and a.status not in ('released', 'withdrawn') and pc.rank < p_rank
            and coalesce(a.wait_ms, 0) < extract(epoch from p_window) * 1000);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_outcome text, p_window_full boolean, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_midnight timestamp with time zone, p_day_guard interval, p_near_end boolean, p_today_fits boolean, p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  if p_outcome = 'rpd' then
    reopens_at := case when not p_today_fits then p_midnight
                       when p_near_end then public.google_ai_pacific_midnight_after(p_midnight)
                       else public.google_ai_pacific_start(public.google_ai_pacific_day(p_now)) end + p_day_guard;
    return;
  end if;
  if p_window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model.model, p_now, p_window, p_model.rpm,
      p_model.tpm, p_tokens, p_class.name, p_caller.name);
    if p_outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                     where a.quota_group = p_quota_group and a.model = p_model.model
                                       and a.status = 'reserved' and a.admitted_at > p_now - p_window
                                       and a.admitted_at < 'infinity') then
      recheck_at := p_now + p_recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_outcome = 'pace' then
    reopens_at := greatest(p_paced_until, reopens_at);
    recheck_at := null;
  elsif p_spread_at is not null then
    reopens_at := greatest(p_spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$function$
;

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
  v_flying integer;
  v_flying_tokens bigint;
  v_counted integer;
begin
  if p_room_until > v_now and p_att.quota_group is not null then
    select count(*), coalesce(sum(a.estimated_tokens), 0) into v_flying, v_flying_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity' and a.status = 'reserved';
    if p_room_requests <= 2 * v_flying or p_room_tokens <= 2 * v_flying_tokens then
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
    perform public.google_ai_adjust_token_budget(p_att, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0));
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;
