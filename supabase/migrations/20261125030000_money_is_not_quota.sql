-- Money is not quota: a Google 429 may also say that the project's monthly spending cap, its billing
-- account's cap or its prepaid credits are used up (docs/google-429s.md). Three more quota causes
-- (monthly_cap, billing_cap, credits_depleted) on attempts and cooldowns; finalize accepts them and, as
-- for a spend cap, their rest covers every model of the group. Applying it twice changes nothing.

alter table public.google_ai_cooldowns drop constraint if exists google_ai_cooldowns_cause_check;
alter table public.google_ai_cooldowns add constraint google_ai_cooldowns_cause_check CHECK ((cause = ANY (ARRAY['minute'::text, 'day'::text, 'limit_zero'::text, 'spend_cap'::text, 'monthly_cap'::text, 'billing_cap'::text, 'credits_depleted'::text, 'unknown'::text])));

alter table public.google_ai_attempts drop constraint if exists google_ai_attempts_quota_cause_check;
alter table public.google_ai_attempts add constraint google_ai_attempts_quota_cause_check CHECK ((quota_cause = ANY (ARRAY['minute'::text, 'day'::text, 'limit_zero'::text, 'spend_cap'::text, 'monthly_cap'::text, 'billing_cap'::text, 'credits_depleted'::text, 'unknown'::text])));


COMMENT ON COLUMN public.google_ai_cooldowns.cause IS 'Why the group rests: a Google 429''s quota_cause (a spend cap or money - monthly_cap, billing_cap, credits_depleted - rests every model of the group: one row each).';

COMMENT ON COLUMN public.google_ai_attempts.quota_cause IS 'For a Google 429: minute, day, limit_zero, spend_cap (the spend-based rate limit), monthly_cap, billing_cap, credits_depleted (money: the project is out until its owner acts) or unknown, read from Google''s body.';

CREATE OR REPLACE FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l
        where p_cause in ('spend_cap', 'monthly_cap', 'billing_cap', 'credits_depleted') and l.is_active
          and exists (select 1 from public.google_ai_api_keys k
                      where public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
                        and (k.models is null or l.model = any (k.models)))) m
  order by m.model
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) IS 'Finalize''s cooldown: one model, or for a spend cap or money (spend_cap, monthly_cap, billing_cap, credits_depleted) every active model the quota group''s keys serve.';

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if p_outcome not in ('succeeded', 'google_error', 'network_error', 'timeout') then
    raise exception 'p_outcome must be succeeded, google_error, network_error or timeout' using errcode = '22023';
  end if;
  if p_quota_cause is not null and p_quota_cause not in ('minute', 'day', 'limit_zero', 'spend_cap', 'monthly_cap',
                                                         'billing_cap', 'credits_depleted', 'unknown') then
    raise exception 'p_quota_cause must be minute, day, limit_zero, spend_cap, monthly_cap, billing_cap, credits_depleted or unknown'
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = p_outcome,
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
  if p_outcome = 'succeeded' and p_response is not null and v_att.request_id is not null then
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    values (v_att.caller, v_att.request_id, 'done', v_att.model, p_response, now(), null)
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null;
  end if;

  if p_outcome = 'succeeded' then
    insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
    values (v_att.model, p_input_tokens, p_output_tokens,
      coalesce(p_input_tokens, 0) + coalesce(p_output_tokens, 0),
      coalesce(v_att.request_id, v_att.reservation_id::text),
      jsonb_build_object('source', 'eve-llm-gateway', 'caller', v_att.caller, 'key_alias', v_att.key_alias,
        'attempt', v_att.attempt, 'reservation_id', v_att.reservation_id));
  end if;

  -- Google says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = 'Google rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
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

  if p_input_tokens is not null and p_input_tokens <> v_att.estimated_tokens then
    perform public.google_ai_adjust_token_budget(v_att, 0, p_input_tokens - v_att.estimated_tokens);
  end if;
  -- The window learns Google's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(v_att, greatest(0, coalesce(p_input_tokens, v_att.estimated_tokens)), false);

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text) IS 'Why a model''s first-ending cooldown rests (a quota cause: docs/google-429s.md): read in the reservation''s statement when it refuses with limit cooldown.';

CREATE OR REPLACE FUNCTION public.google_ai_metrics_text() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
with clock as (
  select now() as at,
         (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark,
         (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id) as guard_ms
), families (family, kind, help) as (values
  ('eve_gateway_attempts_total', 'counter', 'Attempt rows decided (one per reservation decision and its outcome), by status.'),
  ('eve_gateway_refusals_total', 'counter', 'Requests the gateway refused or made wait, by the limit that refused them last (counted once final, minutes later).'),
  ('eve_gateway_google_calls_total', 'counter', 'Calls that reached Google, by outcome, the service tier asked for (standard, flex, priority) and the one Google says served.'),
  ('eve_gateway_google_429_total', 'counter', 'Google''s own 429 answers, by cause (minute, day, limit_zero, spend_cap, monthly_cap, billing_cap, credits_depleted, unknown).'),
  ('eve_gateway_finalizes_lost_total', 'counter', 'Reservations no outcome ever reached (abandoned by housekeeping).'),
  ('eve_gateway_queue_lapses_total', 'counter', 'Waiters that left the admission queue without being admitted (stopped asking).'),
  ('eve_gateway_tokens_total', 'counter', 'Tokens Google counted (gen_ai.client.token.usage), by gen_ai_token_type.'),
  ('eve_gateway_google_latency_seconds', 'histogram', 'Google''s own time per call (gen_ai.server.request.duration).'),
  ('eve_gateway_time_to_first_byte_seconds', 'histogram', 'From a request''s arrival to its answer''s first byte (gen_ai.server.time_to_first_token for streams).'),
  ('eve_gateway_added_latency_seconds', 'histogram', 'Time the gateway added to a request: Server-Timing''s total less Google and the wait.'),
  ('eve_gateway_wait_seconds', 'histogram', 'How long an admitted request waited for capacity, by priority class.'),
  ('eve_gateway_attempts_in_flight', 'gauge', 'Reservations open now (Google called, no outcome yet).'),
  ('eve_gateway_quota_used', 'gauge', 'Admissions in the current window per quota group and model: window="minute" (the sliding 60 s + guard), "day" (the Pacific day).'),
  ('eve_gateway_quota_limit', 'gauge', 'The limit of that window after the model''s safety margin (absent: no limit).'),
  ('eve_gateway_pacific_day_end_timestamp_seconds', 'gauge', 'When the current Pacific day ends (Google''s daily quotas reset).'),
  ('eve_gateway_queue_depth', 'gauge', 'Requests waiting in the admission queue, by model and priority class.'),
  ('eve_gateway_queue_oldest_wait_seconds', 'gauge', 'How long the oldest request in the queue has waited.'),
  ('eve_gateway_cooldown_seconds_left', 'gauge', 'A quota group resting for a model, by cause: seconds until it may book again.'),
  ('eve_gateway_model_withdrawn', 'gauge', '1 when Google answered 404 for the model and requests pass over it.'),
  ('eve_gateway_model_shutdown_timestamp_seconds', 'gauge', 'The day Google stops serving the model, with its successor.'),
  ('eve_gateway_keys', 'gauge', 'Keys by quota group, last health check (ok, invalid, missing_secret, error, unchecked) and rotation.'),
  ('eve_gateway_caller_budget_remaining', 'gauge', 'What a Kaggle client (or a named service caller) may still use today.'),
  ('eve_gateway_housekeeping_last_run_timestamp_seconds', 'gauge', 'When the last housekeeping run (not skipped) ended.'),
  ('eve_gateway_housekeeping_last_success_timestamp_seconds', 'gauge', 'When the last successful housekeeping run ended.'),
  ('eve_gateway_housekeeping_last_run_failed', 'gauge', '1 when the last housekeeping run failed.'),
  ('eve_gateway_metrics_live_rows', 'gauge', 'Attempt rows this scrape counted itself (above the fold''s mark).')
), live as (
  select a.status, a.model, a.quota_group from public.google_ai_attempts a, clock where a.id > clock.mark
), counted as (
  select t.family, t.suffix, t.labels, t.le, t.value from public.google_ai_metric_totals t
  union all
  select s.family, s.suffix, s.labels, s.le, s.value
  from clock cross join lateral public.google_ai_metric_samples(clock.mark, 9223372036854775807, null,
    clock.at - public.google_ai_metric_refusal_settled()) s
), summed as (
  select c.family, c.suffix, c.labels, c.le, sum(c.value) as value from counted c group by 1, 2, 3, 4
), histograms as (
  -- Every bucket of each histogram series, cumulative, +Inf last; _count is the +Inf bucket.
  select h.family, h.labels, b.le,
         sum(coalesce(s.value, 0)) over (partition by h.family, h.labels order by b.le) as value
  from (select distinct s.family, s.labels from summed s where s.suffix = '_bucket') h
  cross join unnest(public.google_ai_metric_bounds_s()) b(le)
  left join summed s on s.family = h.family and s.labels = h.labels and s.suffix = '_bucket' and s.le = b.le
), serving as (
  select public.google_ai_quota_group(k.project_id, k.id) as quota_group, l.model
  from public.google_ai_api_keys k
  join public.google_ai_model_limits l on l.is_active and (k.models is null or l.model = any (k.models))
  where k.is_active
  union
  select c.quota_group, c.model from public.google_ai_usage_counters c where c.quota_group is not null
), quota as (
  select p.quota_group, p.model,
         (select count(*) from public.google_ai_admissions w
          where w.quota_group = p.quota_group and w.model = p.model
            and w.admitted_at > clock.at - (60000 + coalesce(clock.guard_ms, 1000)) * interval '1 millisecond') as minute_requests,
         (select coalesce(sum(w.tokens), 0) from public.google_ai_admissions w
          where w.quota_group = p.quota_group and w.model = p.model
            and w.admitted_at > clock.at - (60000 + coalesce(clock.guard_ms, 1000)) * interval '1 millisecond') as minute_tokens,
         coalesce((select case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.rpd_used else 0 end
                   from public.google_ai_usage_counters c where c.quota_group = p.quota_group and c.model = p.model), 0)
           as day_requests,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
  from serving p cross join clock
  left join public.google_ai_model_limits l on l.model = p.model
), last_run as (
  select m.completed_at, m.status from public.google_ai_maintenance_log m
  where m.operation = 'housekeeping' and m.status <> 'skipped'
  order by m.started_at desc limit 1
), gauges (family, labels, value) as (
  select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
           public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
  from live a where a.status = 'reserved' group by a.model, a.quota_group
  union all
  select 'eve_gateway_quota_used', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('quota_group', q.quota_group), x.w), x.v
  from quota q cross join lateral (values
    ('window="minute",unit="requests"', q.minute_requests::numeric, q.rpm::numeric),
    ('window="minute",unit="tokens"', q.minute_tokens::numeric, q.tpm::numeric),
    ('window="day",unit="requests"', q.day_requests::numeric, q.rpd::numeric)) x(w, v, lim)
  union all
  select 'eve_gateway_quota_limit', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('quota_group', q.quota_group), x.w), x.lim
  from quota q cross join lateral (values
    ('window="minute",unit="requests"', q.rpm::numeric),
    ('window="minute",unit="tokens"', q.tpm::numeric),
    ('window="day",unit="requests"', q.rpd::numeric)) x(w, lim)
  where x.lim is not null
  union all
  select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
         extract(epoch from public.google_ai_pacific_midnight_after(clock.at)) from clock
  union all
  select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
  from public.google_ai_queue q, clock where q.lease_until > clock.at group by q.model, q.priority_class
  union all
  select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('priority_class', q.priority_class)),
         round(extract(epoch from (clock.at - min(q.enqueued_at))), 3)
  from public.google_ai_queue q, clock where q.lease_until > clock.at group by q.model, q.priority_class, clock.at
  union all
  select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
           public.google_ai_metric_label('quota_group', cd.quota_group),
           public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
         round(extract(epoch from (cd.cooldown_until - clock.at)), 3)
  from public.google_ai_cooldowns cd, clock where cd.cooldown_until > clock.at
  union all
  select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
         case when l.withdrawn_at is not null then 1 else 0 end
  from public.google_ai_model_limits l where l.is_active
  union all
  select 'eve_gateway_model_shutdown_timestamp_seconds', concat_ws(',', public.google_ai_metric_label('model', l.model),
           public.google_ai_metric_label('successor', l.successor)),
         extract(epoch from (l.shutdown_date::timestamp at time zone 'America/Los_Angeles'))
  from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null
  union all
  select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
           public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
           public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
  from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
  group by 2
  union all
  select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
           public.google_ai_metric_label('unit', x.unit)), greatest(x.lim - x.used, 0)
  from (select 'client:' || c.name as caller, c.daily_max_requests as max_requests, c.daily_max_tokens::bigint as max_tokens,
               case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.requests_today else 0 end as requests,
               case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.tokens_today::bigint else 0 end as tokens
        from public.google_ai_clients c, clock where c.revoked_at is null
        union all
        select s.caller, s.daily_max_requests, s.daily_max_tokens::bigint,
               case when s.day_bucket = public.google_ai_pacific_day(clock.at) then s.requests_today else 0 end,
               case when s.day_bucket = public.google_ai_pacific_day(clock.at) then s.tokens_today else 0 end
        from public.google_ai_caller_budgets s, clock) b
  cross join lateral (values ('requests', b.max_requests::numeric, b.requests::numeric),
                             ('tokens', b.max_tokens::numeric, b.tokens::numeric)) x(unit, lim, used)
  where x.lim is not null
  union all
  select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at) from last_run r
  union all
  select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end from last_run r
  union all
  select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
  from (select m.completed_at from public.google_ai_maintenance_log m
        where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  union all
  select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
), samples (family, name, labels, value) as (
  select s.family, s.family || s.suffix, s.labels, s.value from summed s where s.suffix = ''
  union all
  select s.family, s.family || '_sum', s.labels, s.value from summed s where s.suffix = '_sum'
  union all
  select h.family, h.family || '_bucket',
         concat_ws(',', nullif(h.labels, ''), 'le="' || case when h.le = 'Infinity' then '+Inf' else h.le::text end || '"'),
         h.value
  from histograms h
  union all
  select h.family, h.family || '_count', h.labels, h.value from histograms h where h.le = 'Infinity'
  union all
  select g.family, g.family, g.labels, g.value from gauges g
)
-- Every family's HELP and TYPE, even before it has a sample, so a scraper knows each from the start.
select string_agg(block, '' order by family)
from (
  select f.family,
         '# HELP ' || f.family || ' ' || f.help || E'\n# TYPE ' || f.family || ' ' || f.kind || E'\n' ||
         coalesce(string_agg(s.name || case when s.labels = '' then '' else '{' || s.labels || '}' end || ' ' ||
                             case when s.value = 'Infinity' then '+Inf' else trim_scale(s.value)::text end || E'\n',
                             '' order by s.name, s.labels), '') as block
  from families f left join samples s on s.family = f.family
  group by f.family, f.kind, f.help
) blocks
$$;
