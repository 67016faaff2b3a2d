-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The words for any provider: an attempt row whose call the provider answered with an error
--   says upstream_error (the status check takes it beside google_error, which earlier rows keep;
--   google_ai_finalize takes google_error until the next release and writes upstream_error; the calls metric
--   and the 24 h view count both), a stream the provider broke off is cut by upstream (google_ai_finalize_cut
--   takes google until the next release), and a key a call finds rejected is taken out naming the provider
--   that rejected it
set check_function_bodies = off;

alter table "public"."google_ai_attempts" drop constraint if exists "google_ai_attempts_status_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_status_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_status_check" CHECK ((status = ANY ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,google_error,released,abandoned}'::text[]))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_status_check";

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer)
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
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end
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
      disabled_reason = case k.serves_provider when 'openai' then 'OpenAI' else 'Google' end
        || ' rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = v_att.api_key_id and k.is_active;
  end if;

  if p_cooldown_until_pacific_midnight then
    v_until := public.google_ai_pacific_midnight_after(pg_catalog.clock_timestamp());
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

CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_answer jsonb;
begin
  if p_cut_by not in ('client', 'upstream', 'google') then
    raise exception 'p_cut_by must be client or upstream' using errcode = '22023';
  end if;
  v_answer := public.google_ai_finalize(
    p_reservation_id => p_reservation_id, p_outcome => 'succeeded', p_input_tokens => p_input_tokens,
    p_output_tokens => p_output_tokens, p_http_status => 200, p_latency_ms => p_latency_ms,
    p_service_tier => p_service_tier, p_served_tier => p_served_tier, p_added_ms => p_added_ms,
    p_first_byte_ms => p_first_byte_ms);
  if not coalesce((v_answer ->> 'ok')::boolean, false) then
    return v_answer;
  end if;
  update public.google_ai_attempts a set
    status = 'cut',
    error_code = 'stream_cut_by_' || p_cut_by,
    error_message = left(p_error_message, 1000)
  where a.reservation_id = p_reservation_id;
  return jsonb_build_object('ok', true, 'status', 'cut');
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[] DEFAULT NULL::bigint[], p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(family text, suffix text, labels text, le numeric, value numeric)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in,
             sum(d.output_tokens)::numeric as tokens_out
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who,
                 public.google_ai_metric_label('provider',
                   (select v.provider from public.google_ai_model_provider(g.model) v)) as pv
          from groups g) g
    cross join lateral (values
      ('eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n),
      ('eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end),
      ('eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end),
      ('eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn', 'google_error') then g.n end),
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      ('eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end),
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      ('eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'), g.tokens_in),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'), g.tokens_out)
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (values
      ('eve_gateway_google_latency_seconds', 'quota_group', d.quota_group, d.latency_ms),
      ('eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms),
      ('eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms),
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      ('eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end)
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, u.model, u.second_name, u.second_value, public.google_ai_metric_le(u.ms) as le,
           count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by 1, 2, 3, 4, 5
  ), histogram_rows as (
    select b.family, concat_ws(',', public.google_ai_metric_label('model', b.model),
                               public.google_ai_metric_label(b.second_name, b.second_value)) as labels,
           b.le, b.n, b.ms
    from buckets b
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select h.family, '_bucket', h.labels, h.le, sum(h.n) from histogram_rows h group by 1, 3, 4
  union all
  select h.family, '_sum', h.labels, 'NaN'::numeric, sum(h.ms) / 1000 from histogram_rows h group by 1, 3
$function$
;

create or replace view "public"."google_ai_usage_by_caller_24h" as  SELECT caller,
    (count(DISTINCT COALESCE(request_id, (reservation_id)::text)))::integer AS requests,
    (count(*))::integer AS attempts,
    (count(*) FILTER (WHERE (status = 'succeeded'::text)))::integer AS succeeded,
    (count(*) FILTER (WHERE (status = ANY (ARRAY['upstream_error'::text, 'google_error'::text, 'network_error'::text, 'timeout'::text]))))::integer AS failed,
    (count(*) FILTER (WHERE (status = 'refused'::text)))::integer AS refused,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'rpm'::text))))::integer AS refused_rpm,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'tpm'::text))))::integer AS refused_tpm,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'rpd'::text))))::integer AS refused_rpd,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'cooldown'::text))))::integer AS refused_cooldown,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit <> ALL (ARRAY['rpm'::text, 'tpm'::text, 'rpd'::text, 'cooldown'::text])))))::integer AS refused_other,
    (count(*) FILTER (WHERE (status = 'reserved'::text)))::integer AS in_flight,
    (count(*) FILTER (WHERE (status = 'released'::text)))::integer AS released,
    (count(*) FILTER (WHERE (status = 'abandoned'::text)))::integer AS abandoned,
    COALESCE(sum(input_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) AS input_tokens,
    COALESCE(sum(output_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) AS output_tokens,
    (COALESCE(sum(input_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) + COALESCE(sum(output_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint)) AS total_tokens,
    array_agg(DISTINCT model ORDER BY model) AS models,
    min(created_at) AS first_at,
    max(created_at) AS last_at
   FROM public.google_ai_attempts a
  WHERE (created_at > (now() - '24:00:00'::interval))
  GROUP BY caller;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
alter view public.google_ai_usage_by_caller_24h set (security_invoker='true');
