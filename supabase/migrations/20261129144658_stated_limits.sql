-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the limits providers state: recorded per quota group on the counter row, followed by rows
--   that choose it, shown in the quota route, the metrics and the maintenance run
set check_function_bodies = off;

drop function if exists "public"."google_ai_finalize"(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer);

drop function if exists "public"."google_ai_settle_call"(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer);

alter table "public"."google_ai_model_limits" add column if not exists "follow_ceiling_rpd" integer;

alter table "public"."google_ai_model_limits" add column if not exists "follow_ceiling_rpm" integer;

alter table "public"."google_ai_model_limits" add column if not exists "follow_ceiling_tpm" integer;

alter table "public"."google_ai_model_limits" add column if not exists "provider_limits" text not null default 'keep'::text;

alter table "public"."google_ai_usage_counters" add column if not exists "stated_at" timestamp with time zone;

alter table "public"."google_ai_usage_counters" add column if not exists "stated_heard" integer[];

alter table "public"."google_ai_usage_counters" add column if not exists "stated_limits" integer[];

alter table "public"."google_ai_usage_counters" add column if not exists "stated_since" timestamp with time zone;

CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_quota_group text, p_model public.google_ai_model_limits, p_at public.google_ai_counter_at, p_requests integer, p_kept jsonb, p_followed jsonb)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  select jsonb_build_object(
        'model', p_model.model,
        'quota_group', p_quota_group,
        'rpm', p_model.rpm,
        'requests_left', case when p_model.rpm is not null then greatest(0, p_model.rpm - p_at.sum_requests) end,
        'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
        'tpm', p_model.tpm,
        'tokens_left', case when p_model.tpm is not null then greatest(0, p_model.tpm - p_at.sum_tokens) end,
        'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
        'rpd', p_model.rpd,
        'day_left', case when p_model.rpd is not null then greatest(0, p_model.rpd - (greatest(p_at.counts[1],
          case when p_at.near_end then p_at.counts[2] end, case when p_at.near_start then p_at.counts[3] end)
          + p_requests)) end,
        'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
          case when p_at.near_start and p_at.counts[3] > p_at.counts[1] then p_at.day_start else p_at.midnight end
          + p_at.day_guard, p_at.at) end,
        'kept', p_kept)
      - case when p_kept is null then '{kept}' else '{}' end::text[]
      || case when p_followed is null then '{}' else jsonb_build_object('followed', p_followed) end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer, p_cache_write_5m_tokens integer DEFAULT NULL::integer, p_cache_write_1h_tokens integer DEFAULT NULL::integer, p_stated_limits integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  if p_outcome not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'google_error') then
    raise exception 'p_outcome must be succeeded, upstream_error, network_error or timeout' using errcode = '22023';
  end if;
  if not (p_quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'p_quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = case p_outcome when 'google_error' then 'upstream_error' else p_outcome end,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_input_tokens,
    output_tokens = p_output_tokens,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    quota_id = left(p_quota_id, 200),
    error_message = left(p_error_message, 1000),
    latency_ms = p_latency_ms,
    quota_cause = p_quota_cause,
    service_tier = left(p_service_tier, 20),
    served_tier = left(p_served_tier, 20),
    -- (greatest() ignores a null: a time not known stays null)
    added_ms = case when p_added_ms is not null then greatest(0, p_added_ms) end,
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end,
    cached_input_tokens = p_cached_input_tokens,
    thinking_tokens = p_thinking_tokens,
    cache_write_1h_tokens = p_cache_write_1h_tokens, cache_write_5m_tokens = p_cache_write_5m_tokens,
    cost_usd = public.google_ai_call_cost(a.model, p_service_tier, p_served_tier, p_outcome, p_input_tokens,
      p_cached_input_tokens, p_output_tokens, p_thinking_tokens, p_cache_write_5m_tokens, p_cache_write_1h_tokens)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if p_outcome = 'succeeded' then
    perform public.google_ai_record_success(v_att, p_input_tokens, p_output_tokens, p_response);
  end if;

  -- The provider says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = v_att.api_key_id and k.is_active;
  end if;

  if p_cooldown_until_pacific_midnight then
    -- A per-day quota: until the next midnight of the provider's day (its row's day_zone: Pacific
    -- for Google's row, whose per-day quotas are the ones that say so).
    select public.google_ai_midnight_after_in(pg_catalog.clock_timestamp(), p.day_zone) into v_until
    from public.google_ai_api_keys k join public.google_ai_providers p on p.name = k.serves_provider
    where k.id = v_att.api_key_id;
  else
    v_until := p_cooldown_until;
  end if;
  if v_until is not null and v_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(v_att.quota_group, v_att.model, v_until, p_quota_cause,
      coalesce(p_error_code, p_outcome), p_quota_id);
  end if;
  perform public.google_ai_settle_call(v_att, p_input_tokens, p_output_tokens, p_room_requests, p_room_tokens,
    p_room_until, p_settled_tokens, p_stated_limits);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_followed_limits(p_model public.google_ai_model_limits, p_stated integer[])
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  if p_stated is null then
    return p_model;
  end if;
  p_model.rpm := coalesce(public.google_ai_effective_limit(
    least(p_stated[1], coalesce(p_model.follow_ceiling_rpm, p_stated[1])), p_model.safety_margin), p_model.rpm);
  p_model.tpm := coalesce(public.google_ai_effective_limit(
    least(p_stated[2], coalesce(p_model.follow_ceiling_tpm, p_stated[2])), p_model.safety_margin), p_model.tpm);
  p_model.rpd := coalesce(public.google_ai_effective_limit(
    least(p_stated[3], coalesce(p_model.follow_ceiling_rpd, p_stated[3])), p_model.safety_margin), p_model.rpd);
  p_model.itpm := coalesce(public.google_ai_effective_limit(p_stated[4], p_model.safety_margin), p_model.itpm);
  p_model.otpm := coalesce(public.google_ai_effective_limit(p_stated[5], p_model.safety_margin), p_model.otpm);
  return p_model;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_limits(p_limits public.google_ai_model_limits, p_quota_group text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  if p_limits.provider_limits is distinct from 'follow' then
    return p_limits;
  end if;
  return public.google_ai_followed_limits(p_limits, (select c.stated_limits from public.google_ai_usage_counters c
    where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_rpm(p_model public.google_ai_model_limits, p_quota_group text)
 RETURNS integer
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  if p_model.provider_limits is distinct from 'follow' then
    return p_model.rpm;
  end if;
  return (public.google_ai_group_limits(p_model, p_quota_group)).rpm;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_limit_disagreements()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('model', d.model, 'quota_group', d.quota_group,
           'limit', d.limit_name, 'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.model, d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.disagreement is not null
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_stated()
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  select x.family, x.family, concat_ws(',', public.google_ai_metric_label('model', d.model),
           public.google_ai_metric_label('quota_group', d.quota_group),
           public.google_ai_metric_label('limit', d.limit_name), x.label), x.value
  from public.google_ai_stated_limits() d
  cross join lateral (values
    ('eve_gateway_provider_limit', public.google_ai_metric_label('mode', d.provider_limits),
       d.provider_limit::numeric),
    ('eve_gateway_provider_limit_disagreement', public.google_ai_metric_label('disagreement', d.disagreement),
       case when d.disagreement is not null then 1 end)) x(family, label, value)
  where x.value is not null
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_note_stated(p_att public.google_ai_attempts, p_stated integer[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_applied integer[];
begin
  if p_stated is null or p_att.quota_group is null then
    return;
  end if;
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select c.* into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model);
  if v_row.id is null then
    return;
  end if;
  v_applied := public.google_ai_stated_applied(v_row.stated_limits, v_row.stated_heard, p_stated,
    array[v_model.rpm, v_model.tpm, v_model.rpd, v_model.itpm, v_model.otpm]);
  if v_applied is not distinct from v_row.stated_limits and p_stated is not distinct from v_row.stated_heard
     and v_row.stated_at > v_now - interval '1 minute' then
    return;
  end if;
  update public.google_ai_usage_counters c set
    stated_limits = v_applied, stated_heard = p_stated, stated_at = v_now,
    stated_since = case when v_applied is distinct from c.stated_limits then v_now else c.stated_since end
  where c.id = v_row.id;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_provider_limits_of(p_model text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('quota_group', d.quota_group, 'limit', d.limit_name,
           'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'effective', d.effective_limit, 'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.model = p_model
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_stated integer[] DEFAULT NULL::integer[])
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
    v_rpm := public.google_ai_group_rpm(v_model, p_att.quota_group);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_room_until - 60000.0 / greatest(v_model.rpm, v_rpm) * interval '1 millisecond'
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
  -- The limits the answer states, on the counter row just settled (locked: no other lock taken).
  if p_stated is not null then
    perform public.google_ai_note_stated(p_att, p_stated);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_stated_applied(p_applied integer[], p_heard integer[], p_stated integer[], p_row integer[])
 RETURNS integer[]
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_applied integer[] := array_fill(null::integer, array[5]);
  v_before integer;
begin
  for i in 1 .. 5 loop
    v_before := coalesce(p_applied[i], p_row[i]);
    v_applied[i] := case when p_stated[i] is null then p_applied[i]
                         when v_before is null or p_stated[i] <= v_before or p_heard[i] = p_stated[i] then p_stated[i]
                         else p_applied[i] end;
  end loop;
  return case when num_nonnulls(variadic v_applied) > 0 then v_applied end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_stated_limits()
 RETURNS TABLE(quota_group text, model text, provider_limits text, limit_name text, row_limit integer, provider_limit integer, effective_limit integer, said_at timestamp with time zone, since timestamp with time zone, disagreement text)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select c.quota_group, l.model, l.provider_limits, n.name, n.own, n.said,
         case when l.provider_limits = 'follow' then n.followed else n.kept end, c.stated_at, c.stated_since,
         case when l.provider_limits = 'keep' and n.own is distinct from n.said
                then case when n.own is null or n.own > n.said then 'above' else 'below' end
              when l.provider_limits = 'follow' and n.ceiling < n.said then 'ceiling' end
  from public.google_ai_model_limits l
  join public.google_ai_usage_counters c on c.model = coalesce(l.limit_pool, l.model) and c.quota_group is not null
  cross join lateral (select public.google_ai_followed_limits(l, c.stated_limits) as f) f
  cross join lateral (values
    ('rpm', l.rpm, c.stated_limits[1], l.follow_ceiling_rpm, (f.f).rpm,
       public.google_ai_effective_limit(l.rpm, l.safety_margin)),
    ('tpm', l.tpm, c.stated_limits[2], l.follow_ceiling_tpm, (f.f).tpm,
       public.google_ai_effective_limit(l.tpm, l.safety_margin)),
    ('rpd', l.rpd, c.stated_limits[3], l.follow_ceiling_rpd, (f.f).rpd,
       public.google_ai_effective_limit(l.rpd, l.safety_margin)),
    ('itpm', l.itpm, c.stated_limits[4], null::integer, (f.f).itpm,
       public.google_ai_effective_limit(l.itpm, l.safety_margin)),
    ('otpm', l.otpm, c.stated_limits[5], null::integer, (f.f).otpm,
       public.google_ai_effective_limit(l.otpm, l.safety_margin)))
    n(name, own, said, ceiling, followed, kept)
  where l.is_active and n.said is not null
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_unlocked_rpd(p_model public.google_ai_model_limits)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select case when p_model.provider_limits is distinct from 'follow' then p_model.rpd end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_unlocked_rpm(p_model public.google_ai_model_limits)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select case when p_model.bucket_share is null and p_model.provider_limits is distinct from 'follow'
              then p_model.rpm end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits public.google_ai_model_limits;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}'::jsonb;
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  v_limits := public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model));
  if v_limits.model is null then
    return null;
  end if;

  -- (A row that follows its provider: the group's limits as the provider stated them for it.)
  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    if v_limits.provider_limits = 'follow' then
      v_limits := public.google_ai_group_limits(v_limits, v_group);
    end if;
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.*, (e.l).rpm as rpm, (e.l).tpm as tpm, (e.l).rpd as rpd into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral (select case when v_limits.provider_limits = 'follow'
                                    then public.google_ai_group_limits(v_limits, g.quota_group)
                                    else v_limits end as l) e
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, (e.l).rpm, (e.l).tpm,
                                                     (e.l).rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
    v_limits.rpm := v_quota.rpm; v_limits.tpm := v_quota.tpm; v_limits.rpd := v_quota.rpd;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model,
      v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    -- (google_ai_group_quota leaves a limit's reset null where the model has no such limit: so is its ms.)
    'requests_reset_ms', public.google_ai_ms_until(v_quota.requests_reset_at, v_now),
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', public.google_ai_ms_until(v_quota.tokens_reset_at, v_now),
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', public.google_ai_ms_until(v_quota.day_reset_at, v_now))
    || v_kept;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_booking
 LANGUAGE plpgsql
AS $function$
declare
  blocked_by text;   -- the earliest reopening so far, and why
  reopens_at timestamptz;
  recheck_at timestamptz;
  cause text;
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try public.google_ai_group_booking;  -- a candidate's answer: google_ai_book_group's, or a refusal in its shape
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name, p_requests);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids,
                 public.google_ai_unlocked_rpm(p_model), p_model.tpm, public.google_ai_unlocked_rpd(p_model), p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone, p_output, p_requests);
      if v_try.outcome = 'booked' then
        -- (After waiting for the row, the key read before the wait must still serve the group. Two exits:
        -- a condition that holds a query is run by the executor even when it need not be.)
        exit when not v_candidate.waiting;
        exit when (v_candidate.key_id, v_candidate.quota_group) in
          (select s.key_id, s.quota_group from public.google_ai_serving_keys(p_model.model, p_exclude_key_ids) s);
        raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
          using errcode = '40001';
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      v_try := row(v_candidate.full_by, null, null, case v_candidate.full_by
          when 'cooldown' then v_candidate.cooldown_until
          when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                          + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
            p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name, p_requests) end, null,
        public.google_ai_refusal_cause(v_candidate.full_by), null, null)::public.google_ai_group_booking;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif v_try.outcome = 'booked' then -- (the loop's last candidate, and its answer; a refusal before it is dropped)
    if v_budget.day is not null then
      perform public.google_ai_count_budgets(null, null, p_caller.name, p_at, null,
        public.google_ai_request_counts(p_attempt) * p_requests, p_tokens, v_budget.worst, true);
    end if;
    return row(v_candidate.quota_group, v_try.minute_bucket, v_try.day_bucket, null, null, null, null,
      v_try.admitted_at, v_try.quota, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name,
      v_budget.worst, null)::public.google_ai_booking;
  end if;
  -- Asking again only helps before the reopening itself.
  return row(null, null, null, blocked_by, reopens_at,
    case when recheck_at >= reopens_at then null else recheck_at end,
    coalesce(cause, public.google_ai_refusal_cause(blocked_by)), null, null, null, null, null, null,
    null)::public.google_ai_booking;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_group_booking
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the booking, this request in its window
  v_rules public.google_ai_booking_verdict;  -- what the rules say (google_ai_booking_rules)
  v_minute timestamptz;  -- the calendar minute it counts in
  v_times record;      -- a refusal's (google_ai_refusal_times)
  v_followed jsonb;    -- a row that follows its provider: the limits the provider stated, as applied
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      return row('skipped', null, null, null, null, null, null, null)::public.google_ai_group_booking;
    end if;
    -- (A raise applies to what is booked, the window holds it; a lowering refuses nothing admitted, it counts it.)
    if p_model.provider_limits = 'follow' then
      p_model := public.google_ai_followed_limits(p_model, v_row.stated_limits);
      v_followed := coalesce(to_jsonb(v_row.stated_limits), '[]'::jsonb);
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      p_requests, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_at, p_tokens, p_output,
      p_requests);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at, p_tokens,
        p_requests);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + p_requests,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_at.counts[1] + p_requests,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then p_requests else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then p_requests else 0 end,
      ring_low        = v_at.ring_low,
      ring            = v_at.ring,
      window_requests = v_at.sum_requests,
      window_tokens   = v_at.sum_tokens,
      window_at       = v_at.at,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_at.at, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned,
                                    v_at.at, v_at.minute, p_requests, v_at.day, v_at.near_end, v_at.near_start) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at, public.google_ai_booked_quota(p_quota_group,
      p_model, v_at, p_requests, v_rules.kept, v_followed))::public.google_ai_group_booking;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
  end;
  -- Refused (the lock given back): the rules' outcome and cause, and the times set above.
  return row(v_rules.outcome, v_minute, v_at.day, v_times.reopens_at, v_times.recheck_at, v_rules.cause, null,
    null)::public.google_ai_group_booking;
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
      cache_write_1h_tokens integer, stated_limits integer[])
    left join unnest(v_open) a on a.reservation_id = x.reservation_id
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), e.n
  loop
    v_answers[c.n] := public.google_ai_finalize(c.reservation_id, c.outcome, c.input_tokens, c.output_tokens,
      c.http_status, c.error_code, c.quota_id, c.error_message, c.latency_ms, c.cooldown_until,
      coalesce(c.cooldown_until_pacific_midnight, false), c.response, c.key_rejected, c.quota_cause, c.service_tier,
      c.served_tier, c.added_ms, c.first_byte_ms, c.room_requests, c.room_tokens,
      case when not v_weighed[c.n] then c.room_until end, c.settled_tokens,
      c.cached_input_tokens, c.thinking_tokens, c.cache_write_5m_tokens, c.cache_write_1h_tokens, c.stated_limits);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_step record;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_result jsonb;
  v_steps jsonb := '{}'::jsonb;
  v_failed text[] := '{}'::text[];
  v_tables text[] := '{}'::text[];
  v_deleted bigint := 0;
  v_more boolean := false;
  v_status text;
  v_completed timestamptz;
  v_log_id integer;
begin
  select * into v_settings from public.google_ai_maintenance_settings s where s.id;
  if not found then
    -- The row was deleted: put the defaults back (they live in the column defaults only).
    insert into public.google_ai_maintenance_settings as s (id) values (true)
    on conflict (id) do update set id = s.id
    returning * into v_settings;
  end if;

  -- One run at a time (the hourly job and an on-demand run may meet); the other one is logged as skipped.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.google_ai_housekeeping')::bigint) then
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started, pg_catalog.clock_timestamp(),
      'skipped', jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget,
      v_step.fn, v_step.rel, v_step.key, v_step.condition, v_step.cutoff, v_step.sort);
    if v_result ->> 'status' = 'failed' then
      v_failed := v_failed || v_step.name;
    end if;
    v_deleted := v_deleted + coalesce((v_result ->> 'deleted')::bigint, 0);
    if coalesce((v_result ->> 'deleted')::bigint, 0) + coalesce((v_result ->> 'abandoned')::bigint, 0) > 0
       and not (pg_catalog.regexp_replace(v_step.rel, '^public\.', '') = any (v_tables)) then
      v_tables := v_tables || pg_catalog.regexp_replace(v_step.rel, '^public\.', '');
    end if;
    v_more := v_more or coalesce((v_result ->> 'more')::boolean, false);
    v_steps := v_steps || jsonb_build_object(v_step.name, v_result);
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_old_lock_timeout, true);

  v_status := case when cardinality(v_failed) > 0 then 'failed' else 'succeeded' end;
  v_completed := pg_catalog.clock_timestamp();
  v_result := jsonb_build_object('duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps, 'failed_steps', to_jsonb(v_failed), 'more_pending', v_more,
    -- Where a model row and its provider's stated limit disagree, in the run's log.
    'limit_disagreements', public.google_ai_limit_disagreements());
  v_log_id := public.google_ai_log_maintenance_run('housekeeping', v_tables, least(v_deleted, 2147483647)::integer,
    v_started, v_completed, v_status,
    v_result || jsonb_build_object('now', v_now, 'settings', to_jsonb(v_settings) - 'id' - 'updated_at'));

  if v_status = 'failed' then
    raise warning 'google_ai_housekeeping: step(s) % failed; see google_ai_maintenance_log id %',
      array_to_string(v_failed, ', '), v_log_id;
  end if;
  return v_result || jsonb_build_object('ok', v_status = 'succeeded', 'status', v_status, 'log_id', v_log_id,
    'deleted_count', v_deleted);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_gauges(p_at timestamp with time zone, p_mark bigint)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with live as (
    select a.status, a.model, a.quota_group from public.google_ai_attempts a where a.id > p_mark
  ), last_run as (
    select m.completed_at, m.status from public.google_ai_maintenance_log m
    where m.operation = 'housekeeping' and m.status <> 'skipped'
    order by m.started_at desc limit 1
  ), gauges (family, labels, value) as (
    select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
             public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
    from live a where a.status = 'reserved' group by a.model, a.quota_group
    union all
    select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
    union all
    select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
           extract(epoch from public.google_ai_pacific_midnight_after(p_at))
    union all
    select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)),
           round(extract(epoch from (p_at - min(q.enqueued_at))), 3)
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
             public.google_ai_metric_label('quota_group', cd.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = cd.model)),
             public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
           round(extract(epoch from (cd.cooldown_until - p_at)), 3)
    from public.google_ai_cooldowns cd where cd.cooldown_until > p_at
    union all
    select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
           case when l.withdrawn_at is not null then 1 else 0 end
    from public.google_ai_model_limits l where l.is_active
    union all
    select 'eve_gateway_model_shutdown_timestamp_seconds',
           concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('successor', l.successor)),
           extract(epoch from l.shutdown_date::timestamp at time zone 'UTC')
    from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null

    union all
    select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('provider', k.serves_provider),
             public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
             public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
             public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
    from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
    group by 2
    union all
    select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
             public.google_ai_metric_label('unit', x.unit)), x.left_today
    from (select 'client:' || c.name as caller, public.google_ai_budget_of(c) as budget
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, public.google_ai_budget_of(s) from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_budget_left(b.budget, public.google_ai_pacific_day(p_at)) l
    cross join lateral (values ('requests', l.requests::numeric), ('tokens', l.tokens::numeric)) x(unit, left_today)
    where x.left_today is not null
    union all
    select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at)
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
    from (select m.completed_at from public.google_ai_maintenance_log m
          where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  )
  select g.family, g.family, g.labels, g.value from gauges g
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           coalesce(case when c.stated_limits[1] is not null then (f.f).rpm end,
             public.google_ai_effective_limit(l.rpm, l.safety_margin)) as rpm,
           coalesce(case when c.stated_limits[2] is not null then (f.f).tpm end,
             public.google_ai_effective_limit(l.tpm, l.safety_margin)) as tpm,
           coalesce(case when c.stated_limits[3] is not null then (f.f).rpd end,
             public.google_ai_effective_limit(l.rpd, l.safety_margin)) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
    -- (A row that follows its provider: the group's limits as the provider stated them, where it did.)
    left join lateral (select case when l.provider_limits = 'follow'
                                   then public.google_ai_followed_limits(l, c.stated_limits) end as f) f on true
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (
    select 'eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric
    union all select 'eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric
    union all select 'eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
  union all
  select 'eve_gateway_provider_day_end_timestamp_seconds', 'eve_gateway_provider_day_end_timestamp_seconds',
         public.google_ai_metric_label('provider', v.name),
         extract(epoch from public.google_ai_midnight_after_in(p_at, v.day_zone))
  from public.google_ai_providers v
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metrics()
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_at timestamptz := pg_catalog.now();
begin
  perform public.google_ai_metrics_fold(null, false);
  -- (PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, about half a
  -- scrape's CPU; this keeps its plan for the connection.)
  -- (A sample without a value has none to say: an owner's older log row may lack its times.)
  return query
    with fold as (select (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark)
    select s.* from (
      select c.* from fold, public.google_ai_metric_counts(v_at, fold.mark) c
      union all
      select q.* from public.google_ai_metric_quota(v_at) q
      union all
      select g.* from fold, public.google_ai_metric_gauges(v_at, fold.mark) g
      union all -- (the pg_cron jobs: 1 where one is missing)
      select 'eve_gateway_cron_job_missing', 'eve_gateway_cron_job_missing',
             public.google_ai_metric_label('job', j.job), case when j.present then 0 else 1 end
      from public.google_ai_cron_jobs() j
      union all
      select r.* from public.google_ai_metric_response_cache() r
      union all
      select d.* from public.google_ai_metric_stated() d
    ) s
    where s.value is not null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_limits public.google_ai_model_limits;
  v_sum record;
  v_bucket_limits jsonb := '{}'::jsonb;
  v_bucket_minute jsonb := '{}'::jsonb;
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at,
         max(e.rpm) as rpm, max(e.tpm) as tpm, max(e.rpd) as rpd
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  -- (A row that follows its provider: each group's limits as the provider stated them for it.)
  cross join lateral (select (f.l).rpm, (f.l).tpm, (f.l).rpd
                      from (select case when v_limits.provider_limits = 'follow'
                                        then public.google_ai_group_limits(v_limits, g.quota_group)
                                        else v_limits end as l) f) e(rpm, tpm, rpd)
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, e.rpm, e.tpm, e.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object('model', v_limits.model,
    -- (The effective limits: a row that follows its provider, the largest of its groups'.)
    'limits', jsonb_build_object('rpm', coalesce(v_sum.rpm, v_limits.rpm), 'tpm', coalesce(v_sum.tpm, v_limits.tpm),
                                 'rpd', coalesce(v_sum.rpd, v_limits.rpd)) || v_bucket_limits,
    'quota_groups', v_sum.groups, 'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_models text[];           -- a token's models (google_ai_token_models; empty: none)
  v_every_model boolean := p_token_hash is null;  -- a service caller's: every model, said apart, not by a null list
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner public.google_ai_budget;  -- the token's client's or the service caller's (null: none)
  v_budget jsonb;
  v_refused text;  -- why the token can never be admitted
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    v_refused := public.google_ai_token_refusal(v_token, v_client, v_now);
    if v_refused is not null then
      return jsonb_build_object('ok', false, 'status', v_refused);
    end if;
    v_models := public.google_ai_token_models(v_token, v_client);
    v_owner := public.google_ai_budget_of(v_client);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: v_owner stays null.
    v_owner := (select public.google_ai_budget_of(b) from public.google_ai_caller_budgets b where b.caller = p_caller);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;
  v_budget := public.google_ai_quota_report_budget(v_now, v_token, v_owner);

  return jsonb_build_object('ok', true, 'as_of', v_now, 'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    -- Each active model the caller may use (v_models, or every one: v_every_model), in model order: its provider, the
    -- minute, the day and the queue (google_ai_model_quota), its cooldowns (the quota groups' names, Google
    -- project ids and key:<uuid>, only for a service caller: a token's caller sees each cause and end, not
    -- whose project rests) and what its shares keep (google_ai_quota_kept).
    'models', (
      select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('provider', l.provider,
                            'cooldowns', (
                              select coalesce(jsonb_agg(to_jsonb(c) - case when p_token_hash is null then ''
                                                                            else 'quota_group' end
                                                        order by c.cooldown_until, c.quota_group), '[]')
                              from (select cd.quota_group, cd.cause, cd.cooldown_until,
                                           public.google_ai_ms_until(cd.cooldown_until, v_now) as retry_after_ms
                                    from public.google_ai_cooldowns cd
                                    where cd.model = l.model and cd.cooldown_until > v_now) c),
                            'kept', public.google_ai_quota_kept(l.model,
                              public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class,
                              v_owner_caller))
                       -- The row's limits beside its provider's, per group, to the service key alone.
                       || case when p_token_hash is null then jsonb_build_object('provider_limits',
                            public.google_ai_provider_limits_of(l.model)) else '{}' end
                       order by l.model), '[]')
      from public.google_ai_model_limits l
      where l.is_active and (v_every_model or l.model = any (v_models))),
    -- The models their provider withdrew among those (which provider, when, its message, the successors,
    -- the shutdown date).
    'withdrawn', (
      select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
      from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
                   l.shutdown_date
            from public.google_ai_model_limits l
            where l.withdrawn_at is not null and (v_every_model or l.model = any (v_models))) w));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_row public.google_ai_model_limits;
begin
  -- (The row as one whole-row value: one column to set up, not one per column; counted, 6.5k less.)
  v_row := (select m from public.google_ai_model_limits m where m.model = p_model and m.is_active);
  if v_row.id is null then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  -- (No margin leaves every limit as it is, but a negative one: the row then goes on as read. A row with a
  -- field set is formed again at every call it is handed to: counted, about 60k less a reservation.)
  if v_row.safety_margin is distinct from 0 or least(v_row.rpm, v_row.tpm, v_row.rpd) < 0 then
    v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
    v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
    v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
    if v_row.itpm is not null or v_row.otpm is not null then
      v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
      v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
    end if;
    -- (A row that follows its provider keeps its margin: the booking takes it from the provider's figures.)
    v_row.safety_margin := case when v_row.provider_limits = 'follow' then v_row.safety_margin else 0 end;
  end if;
  return v_row;
end
$function$
;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_provider_limits_check') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_provider_limits_check" CHECK (((provider_limits = 'keep'::text) OR ((provider_limits = 'follow'::text) AND (provider = ANY (ARRAY['openai'::text, 'anthropic'::text]))))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_provider_limits_check";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_booked_quota(p_quota_group text, p_model public.google_ai_model_limits, p_at public.google_ai_counter_at, p_requests integer, p_kept jsonb, p_followed jsonb) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer, p_stated_limits integer[]) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer, p_stated_limits integer[]) to eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer, p_stated_limits integer[]) to service_role;
revoke all on function public.google_ai_followed_limits(p_model public.google_ai_model_limits, p_stated integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_group_limits(p_limits public.google_ai_model_limits, p_quota_group text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_group_rpm(p_model public.google_ai_model_limits, p_quota_group text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_limit_disagreements() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_limit_disagreements() to service_role;
grant execute on function public.google_ai_limit_disagreements() to eve_gateway;
revoke all on function public.google_ai_metric_stated() from public, anon, authenticated, service_role;
comment on column public.google_ai_model_limits."follow_ceiling_rpm" is 'A row that follows its provider (provider_limits follow): the most RPM the gateway counts against whatever the provider states (null: no ceiling). The same for follow_ceiling_tpm and follow_ceiling_rpd.';
comment on column public.google_ai_model_limits."provider_limits" is 'keep (the default): the group counts against this row''s limits; the limits its provider states are recorded (google_ai_usage_counters.stated_limits) and their difference shown. follow: a quota group''s effective limits are the ones its provider last stated for it (google_ai_followed_limits: a lowering at once, a raise when two answers agree), after safety_margin (the share kept back for callers outside the gateway) and never above a follow_ceiling_*; this row''s figures count until the provider has stated one. Only for providers whose every answer states its limits: OpenAI and Anthropic.';
revoke all on function public.google_ai_note_stated(p_att public.google_ai_attempts, p_stated integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_provider_limits_of(p_model text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_stated integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_stated_applied(p_applied integer[], p_heard integer[], p_stated integer[], p_row integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_stated_limits() from public, anon, authenticated, service_role;
grant execute on function public.google_ai_stated_limits() to service_role;
revoke all on function public.google_ai_unlocked_rpd(p_model public.google_ai_model_limits) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_unlocked_rpm(p_model public.google_ai_model_limits) from public, anon, authenticated, service_role;
comment on column public.google_ai_usage_counters."stated_at" is 'When the provider last stated its limits for this group (refreshed at most once a minute when nothing changed).';
comment on column public.google_ai_usage_counters."stated_heard" is 'The figures the provider''s last answer stated (null: not stated): a raise is applied when the next agrees.';
comment on column public.google_ai_usage_counters."stated_limits" is 'The limits the provider states for this group (rpm, tpm, rpd, itpm, otpm; null: never stated), as applied (google_ai_note_stated: a lowering at once, a raise once two answers agree). A row that follows its provider books against them (google_ai_followed_limits); one that keeps its own shows them beside its own.';
comment on column public.google_ai_usage_counters."stated_since" is 'Since when stated_limits hold their figures (the last change applied).';
