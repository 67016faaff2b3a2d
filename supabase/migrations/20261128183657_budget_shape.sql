-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: One budget shape (google_ai_budget, 32_budgets.sql) read from a token's, a client's or a
--   service caller's row, with one roll-over, one verdict and one counting step; a token's refusal in one
--   place; the quota report's budget and the shares' use counted take fewer parameters
set check_function_bodies = off;

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_budget_left"(p_max bigint, p_used bigint);

drop function if exists "public"."google_ai_quota_report_owner"(p_now timestamp with time zone, p_row boolean, p_max_requests integer, p_max_tokens bigint, p_day_bucket date, p_requests_today integer, p_tokens_today bigint, p_daily_usd numeric, p_monthly_usd numeric, p_month_bucket date, p_spent_today_usd numeric, p_spent_month_usd numeric);

drop function if exists "public"."google_ai_share_use_counted"(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_window_requests integer, p_day_requests integer, p_admitted_at timestamp with time zone, p_day date, p_near_end boolean, p_near_start boolean);

drop function if exists "public"."google_ai_usd_left"(p_max numeric, p_current boolean, p_spent numeric);

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_daily_use"(p_bucket date, p_requests_today integer, p_tokens_today bigint, p_day date, p_requests integer, p_tokens bigint, p_max_requests integer, p_max_tokens bigint);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_budget"') is null then
    create type "public"."google_ai_budget" as ("period" text, "max_requests" integer, "max_tokens" bigint, "max_usd" numeric, "bucket" date, "requests" integer, "tokens" bigint, "spent_usd" numeric, "monthly_max_usd" numeric, "month_bucket" date, "spent_month_usd" numeric);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_b public.google_ai_budget := case when p_book then public.google_ai_budget_on(p_budget, p_day) else p_budget end;
begin
  if p_book or p_budget.period = 'life' or p_budget.bucket = p_day then
    v_b.requests := greatest(0, v_b.requests + p_requests);
    v_b.tokens := greatest(0, v_b.tokens + p_tokens);
    v_b.spent_usd := greatest(0, v_b.spent_usd + p_usd);
  end if;
  if p_book or p_budget.month_bucket = pg_catalog.date_trunc('month', p_day)::date then
    v_b.spent_month_usd := greatest(0, v_b.spent_month_usd + p_usd);
  end if;
  return v_b;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date, OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, p_day);
begin
  requests := v_b.max_requests - least(v_b.max_requests, v_b.requests);
  tokens := v_b.max_tokens - least(v_b.max_tokens, v_b.tokens);
  usd := v_b.max_usd - least(v_b.max_usd, v_b.spent_usd);
  month_usd := v_b.monthly_max_usd - least(v_b.monthly_max_usd, v_b.spent_month_usd);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_caller_budgets)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_clients)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_tokens)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('life', p_row.max_requests, p_row.max_tokens, p_row.max_usd, null, p_row.requests_used,
    p_row.tokens_used, p_row.spent_usd, null, null, null)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_current boolean := p_budget.period = 'life' or p_budget.bucket = p_day;
  v_month date := pg_catalog.date_trunc('month', p_day)::date;
begin
  return row(p_budget.period, p_budget.max_requests, p_budget.max_tokens, p_budget.max_usd,
    case when p_budget.period = 'day' then p_day end, case when v_current then p_budget.requests else 0 end,
    case when v_current then p_budget.tokens else 0 end, case when v_current then p_budget.spent_usd else 0 end,
    p_budget.monthly_max_usd, v_month,
    case when p_budget.month_bucket = v_month then p_budget.spent_month_usd else 0 end)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_verdict(p_budget public.google_ai_budget, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text, OUT period text, OUT reopens_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, public.google_ai_pacific_day(p_at));
begin
  if v_b.requests + p_requests > v_b.max_requests or v_b.tokens + p_tokens > v_b.max_tokens then
    cause := 'budget';
  elsif v_b.max_usd is not null and (p_worst is null or p_worst + v_b.spent_usd > v_b.max_usd) then
    cause := 'spend_budget';
  elsif v_b.monthly_max_usd is not null
        and (p_worst is null or p_worst + v_b.spent_month_usd > v_b.monthly_max_usd) then
    cause := 'spend_budget';
    period := 'month';
    reopens_at := public.google_ai_pacific_start((v_b.month_bucket + interval '1 month')::date);
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_budget(p_now timestamp with time zone, p_token public.google_ai_tokens, p_owner public.google_ai_budget)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'token_requests_left', t.requests, 'token_tokens_left', t.tokens, 'token_expires_at', p_token.expires_at,
    'token_max_usd', p_token.max_usd, 'token_usd_left', t.usd,
    'usd_applies_to', case when p_token.id is not null then 'client' when p_owner.period is not null then 'caller' end,
    'daily_requests_left', o.requests, 'daily_tokens_left', o.tokens,
    'daily_resets_at', case when num_nonnulls(p_owner.max_requests, p_owner.max_tokens) > 0
                            then public.google_ai_pacific_midnight_after(p_now) end,
    'daily_max_usd', p_owner.max_usd, 'daily_usd_left', o.usd,
    'monthly_max_usd', p_owner.monthly_max_usd, 'monthly_usd_left', o.month_usd,
    'spend', case when p_owner.period is not null then jsonb_build_object('today_usd', (b.owner).spent_usd,
                                                                   'month_usd', (b.owner).spent_month_usd) end)
  from (select public.google_ai_pacific_day(p_now) as day) d
  cross join lateral (select public.google_ai_budget_on(p_owner, d.day) as owner) b
  cross join lateral public.google_ai_budget_left(public.google_ai_budget_of(p_token), d.day) t
  cross join lateral public.google_ai_budget_left(p_owner, d.day) o
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_requests integer, p_day date, p_near_end boolean, p_near_start boolean)
 RETURNS public.google_ai_share_use[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_day_requests integer := 1;
  v_admitted_at timestamptz;  -- a release's
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- A release. (The ids apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
    v_day_requests := -1;
    v_admitted_at := p_at;
    p_at := null;
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (v_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_at, p_window, v_old.ring_low, v_old.ring, v_old.window_requests, null,
      p_requests, 0, v_admitted_at);
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if v_day_requests > 0 or v_old.day_bucket = p_day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_day);
      v_new.day_bucket := p_day;
      v_new.day_used := greatest(0, v_days[1] + v_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_near_end then v_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_near_start then v_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_refusal(p_token public.google_ai_tokens, p_client public.google_ai_clients, p_at timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case when p_token.id is null then 'token_invalid'
              when p_token.revoked_at is not null or p_client.revoked_at is not null then 'token_revoked'
              when p_token.expires_at <= p_at then 'token_expired' end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_day date;
  v_counts integer[];  -- the day's counts (google_ai_day_counts): today's, ahead for tomorrow, yesterday's
  v_midnight timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_ring record;
  v_rules record;      -- what the rules say (google_ai_booking_rules)
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      outcome := 'skipped';
      return;
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_day := greatest(public.google_ai_day_in(v_now, p_zone), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_midnight_after_in(v_now, p_zone);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_day_start_in(v_day, p_zone) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_now, v_window, v_day, p_tokens,
      v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end, v_near_start, p_output);
    outcome := v_rules.outcome; cause := v_rules.cause; day_bucket := v_day;
    minute_bucket := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    if outcome <> 'booked' then
      select r.reopens_at, r.recheck_at into reopens_at, recheck_at
      from public.google_ai_refusal_times(outcome, v_rules.window_full, p_quota_group, p_model, p_class, p_caller,
        v_now, v_window, p_tokens, v_midnight, v_day_guard, v_near_end, p_model.rpd - v_rules.held_rpd > v_counts[1],
        v_rules.paced_until, v_rules.spread_at, v_guard.recheck_ms) r;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = google_ai_book_group.minute_bucket,
      day_bucket      = v_day,
      rpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.rpm_used else 0 end
                        + 1,
      tpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_counts[1] + 1,
      rpd_next_used   = v_counts[2] + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_counts[3] + case when v_near_start then 1 else 0 end,
      ring_low        = v_ring.ring_low,
      ring            = v_ring.ring,
      window_requests = v_ring.sum_requests,
      window_tokens   = v_ring.sum_tokens,
      window_at       = v_now,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_now, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
    quota := public.google_ai_booked_quota(p_model.model, p_quota_group, p_model.rpm, p_model.tpm, p_model.rpd, v_now,
      v_ring.sum_requests, v_ring.sum_tokens, v_ring.ring_low, v_ring.ring, v_window, v_counts, v_near_end,
      v_near_start, v_day, v_midnight, v_day_guard, v_rules.kept)
      - case when v_rules.kept is null then '{kept}' else '{}' end::text[];
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, cause, the buckets, reopens_at and recheck_at keep the values set above
  end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
declare
  v_row public.google_ai_caller_budgets;
begin
  if p_client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that judges a budget costs more
  -- to start than this one.)
  select b.* into v_row from public.google_ai_caller_budgets b where b.caller = p_caller for update;
  if not found then
    return;
  end if;
  day := public.google_ai_pacific_day(p_at);
  if num_nonnulls(v_row.daily_max_usd, v_row.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, p_output, p_class);
  end if;
  select v.cause, v.period, v.reopens_at into cause, period, reopens_at
  from public.google_ai_budget_verdict(public.google_ai_budget_of(v_row), p_at,
    public.google_ai_request_counts(p_attempt), p_tokens, worst) v;
end
$function$
;

create or replace view "public"."google_ai_caller_budgets_today" as  SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_start((public.google_ai_pacific_day(now()) + 1)) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b.*), public.google_ai_pacific_day(now())) u(period, max_requests, max_tokens, max_usd, bucket, requests, tokens, spent_usd, monthly_max_usd, month_bucket, spent_month_usd));

CREATE OR REPLACE FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer DEFAULT 1)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
  v_reason := public.google_ai_token_refusal(v_token, v_client, pg_catalog.clock_timestamp());

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', v_token.models, 'expires_at', v_token.expires_at, 'max_output_tokens', v_client.max_output_tokens);
  end if;

  if p_refusals is distinct from 0 then
    insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
    values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
    on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
      refusals = r.refusals + excluded.refusals,
      last_seen = pg_catalog.clock_timestamp();
  end if;
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_budgets(p_token_id uuid, p_client_id uuid, p_caller text, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := coalesce(case when p_client_id is null then p_day end, public.google_ai_pacific_day(p_at));
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_usd numeric := coalesce(p_usd, 0);
begin
  if p_requests = 0 and p_tokens = 0 and v_usd = 0 and not p_book then
    return;
  end if;
  if p_token_id is not null then
    update public.google_ai_tokens t set (requests_used, tokens_used, spent_usd) = (select n.requests, n.tokens,
        n.spent_usd from public.google_ai_budget_counted(public.google_ai_budget_of(t), v_day, p_requests, p_tokens,
        v_usd, p_book) n), last_used_at = case when p_book then p_at else t.last_used_at end
    where t.id = p_token_id;
    update public.google_ai_clients c set (day_bucket, requests_today, tokens_today, spent_today_usd, month_bucket,
        spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(c), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where c.id = p_client_id and (p_book or c.day_bucket = v_day or c.month_bucket = v_month);
  elsif p_client_id is null then
    update public.google_ai_caller_budgets b set (day_bucket, requests_today, tokens_today, spent_today_usd,
        month_bucket, spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket,
        n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(b), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where b.caller = p_caller and (p_book or b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
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
               (select v.provider from public.google_ai_model_provider(cd.model) v)),
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

CREATE OR REPLACE FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[] DEFAULT NULL::text[], p_ttl_seconds integer DEFAULT NULL::integer, p_max_requests integer DEFAULT NULL::integer, p_max_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_client public.google_ai_clients;
  v_models text[];
  v_ttl interval;
  v_max_requests integer;
  v_max_tokens integer;
  v_recent integer;
  v_oldest timestamptz;
  v_token_id uuid;
  v_expires timestamptz;
  v_allowed jsonb;
  v_left record;
begin
  if p_token_hash is null or p_token_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'p_token_hash must be a SHA-256 hex digest' using errcode = '22023';
  end if;

  select * into v_client from public.google_ai_clients c where c.secret_hash = p_secret_hash for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'invalid_secret');
  end if;
  if v_client.revoked_at is not null then
    return jsonb_build_object('ok', false, 'error', 'client_revoked');
  end if;

  -- Default lifetime: one hour, or the client's maximum if that is shorter.
  v_ttl := coalesce(make_interval(secs => p_ttl_seconds), least(interval '1 hour', v_client.max_token_ttl));
  v_allowed := jsonb_build_object('models', v_client.models,
    'max_ttl_seconds', extract(epoch from v_client.max_token_ttl)::integer,
    'max_requests', v_client.token_max_requests, 'max_tokens', v_client.token_max_tokens);

  if p_models is null then
    v_models := v_client.models;
  else
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model,
      m)) into v_models from unnest(p_models) m;
  end if;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1
       or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1
       or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', v_allowed);
  end if;
  v_max_requests := coalesce(p_max_requests, v_client.token_max_requests);
  v_max_tokens := coalesce(p_max_tokens, v_client.token_max_tokens);

  select count(*), min(t.created_at) into v_recent, v_oldest
  from public.google_ai_tokens t
  where t.client_id = v_client.id and t.created_at > now() - interval '1 hour';
  if v_recent >= v_client.mint_per_hour then
    return jsonb_build_object('ok', false, 'error', 'mint_rate_limited',
      'retry_after_ms', public.google_ai_ms_until(v_oldest + interval '1 hour', now()));
  end if;

  v_expires := now() + v_ttl;
  v_left := public.google_ai_budget_left(public.google_ai_budget_of(v_client),
    public.google_ai_pacific_day(pg_catalog.clock_timestamp()));
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens, max_usd)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens, v_client.token_max_usd)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models), 'budget', jsonb_build_object('max_requests',
      v_max_requests, 'max_tokens', v_max_tokens,
      -- The budgets in money that apply to the token's calls: its own for its life, its client's left of
      -- the Pacific day and month (null: none).
      'max_usd', v_client.token_max_usd,
      'daily_usd_left', v_left.usd, 'monthly_usd_left', v_left.month_usd));
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
  v_models text[];
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
    v_models := v_token.models;
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

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_second bigint := floor(extract(epoch from p_att.admitted_at))::bigint;
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and v_second is not null then -1 else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (only a release gives those counts back: a finalize reads no zone).
  v_zone text := case when p_released then public.google_ai_day_zone(p_att.model) end;
  v_near_end boolean := p_att.admitted_at
    >= public.google_ai_midnight_after_in(p_att.admitted_at, v_zone) - v_day_guard;
  v_near_start boolean := p_att.admitted_at
    < public.google_ai_day_start_in(public.google_ai_day_in(p_att.admitted_at, v_zone), v_zone) + v_day_guard;
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce((select l.limit_pool
    from public.google_ai_model_limits l where l.model = p_att.model), p_att.model)
  for update;
  if not found then
    return;
  end if;
  if p_att.booked_output_tokens is not null then
    select b.input_until, b.output_until into v_row.input_until, v_row.output_until
    from public.google_ai_buckets_settled(p_att, p_tokens, p_released, v_row.input_until, v_row.output_until,
      v_window) b;
  end if;
  v_ring := public.google_ai_ring_at(null, v_window, v_row.ring_low, v_row.ring,
    v_row.window_requests, v_row.window_tokens, v_requests,
    case when v_second is not null then v_delta else 0 end, p_att.admitted_at);

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_near_end
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_near_start
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
    ring = v_ring.ring,
    window_requests = v_ring.sum_requests, window_tokens = v_ring.sum_tokens,
    input_until = v_row.input_until, output_until = v_row.output_until,
    share_use = case when p_released and c.share_use is not null then public.google_ai_share_use_counted(c.share_use,
                  null, array(select s.id from public.google_ai_quota_shares s
                              where s.model = p_att.model
                                and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
                  p_att.admitted_at, v_window, v_requests, p_att.day_bucket, v_near_end, v_near_start)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  if v_limit is null and not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, caller, client_id, token_id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit,
    coalesce(v_cause, public.google_ai_refusal_cause(v_limit)), v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', coalesce(v_cause,
    public.google_ai_refusal_cause(v_limit)),
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on type public.google_ai_budget is 'A budget and its use: requests, tokens and money (US dollars) per period (life: a token''s; day: a Pacific day, bucket), money per Pacific month (month_bucket); null: no limit.';
revoke all on function public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date, OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_caller_budgets) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_of(p_row public.google_ai_caller_budgets) to service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_clients) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_tokens) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) to service_role;
revoke all on function public.google_ai_budget_verdict(p_budget public.google_ai_budget, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text, OUT period text, OUT reopens_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_caller_budgets."daily_max_usd" is 'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: no limit), booked and settled as a client''s (google_ai_clients.daily_max_usd). Refusal caller_budget.';
revoke all on table public.google_ai_caller_budgets_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_caller_budgets_today to service_role;
alter view public.google_ai_caller_budgets_today set (security_invoker='true');
comment on view public.google_ai_caller_budgets_today is 'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit): a reservation books its worst case (google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, finalize settles it on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
revoke all on function public.google_ai_quota_report_budget(p_now timestamp with time zone, p_token public.google_ai_tokens, p_owner public.google_ai_budget) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_requests integer, p_day date, p_near_end boolean, p_near_start boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_token_refusal(p_token public.google_ai_tokens, p_client public.google_ai_clients, p_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_tokens."max_usd" is 'The most the token''s calls may cost in US dollars over its life (null: no limit), booked and settled as its client''s are (spent_usd); refused with limit token_budget, cause spend_budget, never reopening.';
