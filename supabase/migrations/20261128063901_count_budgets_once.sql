-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a call's budgets (a token's, its client's, a service caller's) booked and settled by one
--   function, google_ai_count_budgets, in place of google_ai_count_token_use, google_ai_count_caller_budget
--   and google_ai_adjust_token_budget
set check_function_bodies = off;

drop function if exists "public"."google_ai_adjust_token_budget"(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer, p_usd numeric);

drop function if exists "public"."google_ai_caller_budget_at"(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text);

drop function if exists "public"."google_ai_count_caller_budget"(p_caller text, p_day date, p_requests integer, p_tokens bigint, p_worst numeric);

drop function if exists "public"."google_ai_count_token_use"(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_worst numeric);

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_budget public.google_ai_caller_budgets;
  v_over boolean;
  v_day date;
begin
  if p_client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that reads a day's use costs more
  -- to start than this one; counted, 44k instructions less a reservation without a budget, 22k more
  -- with one.)
  select b.* into v_budget from public.google_ai_caller_budgets b where b.caller = p_caller for update;
  if not found then
    return;
  end if;
  select d.day, u.over into day, v_over
  from (select public.google_ai_pacific_day(p_at) as day) d
  cross join lateral public.google_ai_daily_use(v_budget.day_bucket, v_budget.requests_today, v_budget.tokens_today,
    d.day, public.google_ai_request_counts(p_attempt), p_tokens, v_budget.daily_max_requests,
    v_budget.daily_max_tokens) u;
  v_day := day;
  if v_over then
    select 'budget', 'day', public.google_ai_pacific_midnight_after(p_at) into cause, period, reopens_at;
  elsif num_nonnulls(v_budget.daily_max_usd, v_budget.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, p_output, p_class);
    if worst is null or worst + (case when v_budget.day_bucket = v_day then v_budget.spent_today_usd else 0 end)
                        > v_budget.daily_max_usd then
      select 'spend_budget', case when v_budget.daily_max_usd is not null then 'day' else 'month' end,
             case when worst is not null then public.google_ai_pacific_midnight_after(p_at) end
        into cause, period, reopens_at;
    elsif worst + (case when v_budget.month_bucket = date_trunc('month', v_day)::date then v_budget.spent_month_usd
                        else 0 end) > v_budget.monthly_max_usd then
      select 'spend_budget', 'month',
             public.google_ai_pacific_start((date_trunc('month', v_day) + interval '1 month')::date)
        into cause, period, reopens_at;
    end if;
  end if;
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
    update public.google_ai_tokens t set
      requests_used = greatest(0, t.requests_used + p_requests),
      tokens_used = greatest(0, t.tokens_used + p_tokens),
      spent_usd = greatest(0, t.spent_usd + v_usd),
      last_used_at = case when p_book then p_at else t.last_used_at end
    where t.id = p_token_id;
    update public.google_ai_clients c set
      day_bucket = case when p_book then v_day else c.day_bucket end,
      requests_today = case when c.day_bucket = v_day then greatest(0, c.requests_today + p_requests)
                            when p_book then p_requests else c.requests_today end,
      tokens_today = case when c.day_bucket = v_day then greatest(0, c.tokens_today + p_tokens)
                          when p_book then p_tokens else c.tokens_today end,
      spent_today_usd = case when c.day_bucket = v_day then greatest(0, c.spent_today_usd + v_usd)
                             when p_book then v_usd else c.spent_today_usd end,
      month_bucket = case when p_book then v_month else c.month_bucket end,
      spent_month_usd = case when c.month_bucket = v_month then greatest(0, c.spent_month_usd + v_usd)
                             when p_book then v_usd else c.spent_month_usd end
    where c.id = p_client_id and (p_book or c.day_bucket = v_day or c.month_bucket = v_month);
  elsif p_client_id is null then
    update public.google_ai_caller_budgets b set
      day_bucket = case when p_book then v_day else b.day_bucket end,
      requests_today = case when b.day_bucket = v_day then greatest(0, b.requests_today + p_requests)
                            when p_book then p_requests else b.requests_today end,
      tokens_today = case when b.day_bucket = v_day then greatest(0, b.tokens_today + p_tokens)
                          when p_book then p_tokens else b.tokens_today end,
      spent_today_usd = case when b.day_bucket = v_day then greatest(0, b.spent_today_usd + v_usd)
                             when p_book then v_usd else b.spent_today_usd end,
      month_bucket = case when p_book then v_month else b.month_bucket end,
      spent_month_usd = case when b.month_bucket = v_month then greatest(0, b.spent_month_usd + v_usd)
                             when p_book then v_usd else b.spent_month_usd end
    where b.caller = p_caller and (p_book or b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric, OUT budget_period text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}';  -- the groups passed over in a first pass so far
  v_try record;      -- a candidate's answer (google_ai_book_group's, or the refusal its unlocked counts show)
begin
  if p_model.model is null then
    return; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name);
  if v_budget.cause is not null then
    select 'caller_budget', v_budget.cause, v_budget.reopens_at, v_budget.period
      into blocked_by, cause, reopens_at, budget_period;
    return;
  end if;

  -- The candidates, best first, each tier twice: the second pass waits for the groups the first passed
  -- over. What their unlocked counts already show (a cooldown, the day or the window full for
  -- everyone) is refused without taking their locks.
  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, p_model.tpm,
                 p_model.rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting);
      if v_try.outcome = 'booked' then
        select v_candidate.quota_group, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name
          into booked_group, key_id, key_alias, env_var_name;
        -- (After waiting for the row, the key read before the wait must still serve the group.)
        if v_candidate.waiting
           and not public.google_ai_key_serves(p_model.model, p_exclude_key_ids, v_candidate.key_id, booked_group) then
          raise exception 'the keys of quota group % changed during the reservation; retry', booked_group
            using errcode = '40001';
        end if;
        exit;
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      select v_candidate.full_by as outcome, public.google_ai_refusal_cause(v_candidate.full_by) as cause,
             public.google_ai_full_group_reopens_at(v_candidate.quota_group, v_candidate.full_by,
               v_candidate.cooldown_until, p_model, p_at, p_tokens, p_class.name, p_caller.name) as reopens_at,
             null::timestamptz as recheck_at
        into v_try;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif booked_group is not null then
    select v_try.minute_bucket, v_try.day_bucket, v_try.admitted_at, v_try.quota, null, null, null, null, v_budget.worst
      into minute_bucket, day_bucket, admitted_at, quota, blocked_by, reopens_at, recheck_at, cause, booked_usd;
    perform public.google_ai_count_budgets(null, null, p_caller.name, p_at, null,
      public.google_ai_request_counts(p_attempt), p_tokens, v_budget.worst, true) where v_budget.day is not null;
    return;
  end if;

  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  recheck_at := case when recheck_at >= reopens_at then null else recheck_at end;
end
$function$
;

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

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    v_att.day_bucket, 0, -v_att.estimated_tokens, -v_att.booked_usd, false);
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

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_answer jsonb;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_count_token then
    perform public.google_ai_count_budgets(p_token_id, p_client_id, null, p_now, null,
      public.google_ai_request_counts(p_attempt), p_estimated_tokens, p_booked_usd, true);
  end if;
  if p_hold then
    perform public.google_ai_hold_request(p_caller, p_request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd)
  values (gen_random_uuid(), 'reserved', p_request_id, p_caller, p_client_id, p_token_id, p_model,
    p_requested_model, p_attempt, p_key_id, p_key_alias, p_quota_group, p_minute_bucket, p_day_bucket,
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'), p_class, p_admitted_at, p_booked_usd)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class, 'quota', p_quota,
    'booked_usd', a.booked_usd)
  into v_answer;
  if p_quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
begin
  update public.google_ai_attempts a set
    status = 'released',
    finished_at = pg_catalog.clock_timestamp(),
    error_message = left(p_reason, 1000)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    v_att.day_bucket, -public.google_ai_request_counts(v_att.attempt), -v_att.estimated_tokens, -v_att.booked_usd,
    false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
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
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      p_att.day_bucket, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_attempts."booked_usd" is 'The worst case the reservation booked in its client''s budget in money (google_ai_count_budgets), settled on cost_usd when the call ends; null: no budget in money.';
revoke all on function public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_count_budgets(p_token_id uuid, p_client_id uuid, p_caller text, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) from public, anon, authenticated, service_role;
