-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A success written before its answer goes through google_ai_finalize_call (commit, then
--   flush); a batch of finalizes reads each call's margin (google_ai_room_rest) before its first counter row,
--   so successes with the provider's room go with the others (issue 89)
set check_function_bodies = off;

CREATE OR REPLACE PROCEDURE public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb)
 LANGUAGE plpgsql
AS $procedure$
begin
  -- The finalize: its commit does not wait for the disk, so the counter row's lock goes with it.
  perform pg_catalog.set_config('synchronous_commit', 'off', true);
  o_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  commit;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the finalize's commit written before it.
  perform pg_catalog.set_config('synchronous_commit', 'on', true);
  perform pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$procedure$
;

CREATE OR REPLACE FUNCTION public.google_ai_room_bucket_model(p_att public.google_ai_attempts, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
begin
  if p_room_until > pg_catalog.clock_timestamp() and p_att.quota_group is not null and p_room_requests = 0
     and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m
    where m.model = p_att.model and m.bucket_share is not null
      and public.google_ai_effective_limit(m.rpm, m.safety_margin) > 0;
  end if;
  return v_model;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_room_rest(p_att public.google_ai_attempts, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone)
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
begin
  if not (p_room_until > v_now and p_att.quota_group is not null) then
    return;
  end if;
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
end
$function$
;

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
                                                         from pg_catalog.jsonb_array_elements(p_calls) e)
    order by a.id for update);
  v_answers jsonb[] := pg_catalog.array_fill(null::jsonb, array[pg_catalog.jsonb_array_length(p_calls)]);
  -- The calls whose room google_ai_room_rest has weighed already.
  v_weighed boolean[] := pg_catalog.array_fill(false, array[pg_catalog.jsonb_array_length(p_calls)]);
  c record;
begin
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select a, x.room_requests, x.room_tokens, x.room_until, e.n
    from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n)
    cross join lateral pg_catalog.jsonb_to_record(e.call) x(reservation_id uuid, room_requests integer,
      room_tokens integer, room_until timestamptz)
    join unnest(v_open) a on a.reservation_id = x.reservation_id
    left join public.google_ai_model_limits l on l.model = a.model
    where x.room_until is not null
    order by a.quota_group, coalesce(l.limit_pool, a.model), e.n
  loop
    if (public.google_ai_room_bucket_model(c.a, c.room_requests, c.room_tokens, c.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, c.room_requests, c.room_tokens, c.room_until);
      v_weighed[c.n] := true;
    end if;
  end loop;
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
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), e.n
  loop
    v_answers[c.n] := public.google_ai_finalize(c.reservation_id, c.outcome, c.input_tokens, c.output_tokens,
      c.http_status, c.error_code, c.quota_id, c.error_message, c.latency_ms, c.cooldown_until,
      coalesce(c.cooldown_until_pacific_midnight, false), c.response, c.key_rejected, c.quota_cause, c.service_tier,
      c.served_tier, c.added_ms, c.first_byte_ms, c.room_requests, c.room_tokens,
      case when not v_weighed[c.n] then c.room_until end, c.settled_tokens,
      c.cached_input_tokens, c.thinking_tokens, c.cache_write_5m_tokens, c.cache_write_1h_tokens);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_room_until is not null then
    v_model := public.google_ai_room_bucket_model(p_att, p_room_requests, p_room_tokens, p_room_until);
  end if;
  if v_model.model is not null then
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_room_until - 60000.0 / v_model.rpm * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_room_until + v_step.tolerance;
  elsif p_room_until is not null then
    perform public.google_ai_room_rest(p_att, p_room_requests, p_room_tokens, p_room_until);
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

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on procedure public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on procedure public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb) to eve_gateway;
grant execute on procedure public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb) to service_role;
revoke all on function public.google_ai_room_bucket_model(p_att public.google_ai_attempts, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_room_rest(p_att public.google_ai_attempts, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) from public, anon, authenticated, service_role;
