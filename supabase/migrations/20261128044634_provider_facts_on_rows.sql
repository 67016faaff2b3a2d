-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_providers.day_zone (the zone a provider's day turns in) and its check; the spend
--   views and a per-day 429's rest by each provider's zone; google_ai_finalize_withdrawn takes the successor
--   its dialect read (no message parsed in SQL); google_ai_provider and google_ai_active_keys without a
--   default provider of their own
set check_function_bodies = off;

drop function if exists "public"."google_ai_finalize_withdrawn"(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer);

alter table "public"."google_ai_providers" add column if not exists "day_zone" text not null default 'UTC'::text;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_day_zone_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_day_zone_check" CHECK (((day_zone ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$'::text) AND (timezone(day_zone, '2000-01-01 00:00:00+00'::timestamp with time zone) IS NOT NULL))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_day_zone_check";

CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404, p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_successor text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_marked boolean;
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, 0, -v_att.estimated_tokens, -v_att.booked_usd);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_successor) <> pg_catalog.lower(v_att.model)
                            then left(p_successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;
  v_marked := found;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', v_marked,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer)
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
    cost_usd = public.google_ai_call_cost(a.model, p_service_tier, p_served_tier, p_outcome, p_input_tokens,
      p_cached_input_tokens, p_output_tokens, p_thinking_tokens)
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
    select ((((pg_catalog.clock_timestamp() at time zone p.day_zone)::date + 1)::timestamp) at time zone p.day_zone)
      into v_until
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
    p_room_until, p_settled_tokens);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_provider(p_name text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case pg_catalog.translate(pg_catalog.lower(p_name), ' _-', '')
           when 'googleai' then 'google' when 'gemini' then 'google'
           else pg_catalog.translate(pg_catalog.lower(p_name), ' _-', '') end
$function$
;

create or replace view "public"."google_ai_spend_daily" as  SELECT ((a.admitted_at AT TIME ZONE COALESCE(p.day_zone, 'UTC'::text)))::date AS day,
    l.provider,
    a.model,
    a.caller,
    (count(*))::integer AS calls,
    (count(*) FILTER (WHERE (a.cost_usd IS NULL)))::integer AS calls_unpriced,
    COALESCE(sum(a.cost_usd), (0)::numeric) AS spend_usd
   FROM ((public.google_ai_attempts a
     LEFT JOIN public.google_ai_model_limits l ON ((l.model = a.model)))
     LEFT JOIN public.google_ai_providers p ON ((p.name = l.provider)))
  WHERE ((a.admitted_at IS NOT NULL) AND (a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout,google_error}'::text[])))
  GROUP BY (((a.admitted_at AT TIME ZONE COALESCE(p.day_zone, 'UTC'::text)))::date), l.provider, a.model, a.caller;

CREATE OR REPLACE FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('provider', s.provider, 'day', s.day, 'spend_usd', s.spend,
           'calls', s.calls, 'calls_unpriced', s.unpriced) order by s.provider), '[]')
  from (select d.provider, d.day, sum(d.spend_usd) as spend, sum(d.calls)::integer as calls,
               sum(d.calls_unpriced)::integer as unpriced
        from public.google_ai_spend_daily d
        left join public.google_ai_providers p on p.name = d.provider
        where d.day = (coalesce(p_now, now()) at time zone coalesce(p.day_zone, 'UTC'))::date - 1
        group by 1, 2) s
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
CREATE OR REPLACE FUNCTION public.google_ai_active_keys(p_provider text DEFAULT NULL::text)
 RETURNS TABLE(id text, key_alias text, env_var_name text, quota_group text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select k.id::text, k.key_alias, k.env_var_name, public.google_ai_quota_group(k.project_id, k.id)
  from public.google_ai_api_keys k
  where k.is_active and k.serves_provider = p_provider
  order by k.priority nulls last, k.key_alias
$function$;
revoke all on function public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer, p_successor text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer, p_successor text) to service_role;
grant execute on function public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer, p_successor text) to eve_gateway;
comment on column public.google_ai_model_limits."google_successor" is 'The model the provider''s withdrawal answer names as the replacement (read by its dialect: Google''s ".. use models/X"), kept when the model is marked withdrawn: a suggestion for the operator. Requests go to it only through successor or fallback_models, which the operator sets (docs/models.md).';
alter view public.google_ai_spend_daily set (security_invoker='true');
comment on view public.google_ai_spend_daily is 'Spend in US dollars per provider''s day (in its row''s day_zone), provider, model and caller; calls_unpriced: calls whose cost is not known (not in spend_usd).';
