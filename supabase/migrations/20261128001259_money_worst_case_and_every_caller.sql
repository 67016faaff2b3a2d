-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a budget in money books the real worst case and holds for every kind of caller: a model's
--   thinking ceiling (max_thinking_tokens) and google_ai_worst_call_cost (the thinking a call may do, at the
--   dearest tier it may be asked at); a scoped token's budget in money over its life
--   (google_ai_tokens.max_usd, spent_usd; the client's token_max_usd at mint), booked and settled beside its
--   client's; a service caller's budget in money per Pacific day and month (google_ai_caller_budgets), its
--   worst case from the model row (booked_output_tokens, else the catalogued output limit), booked with the
--   quota and settled by finalize
set check_function_bodies = off;

drop function if exists "public"."google_ai_book_best_group"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text);

drop function if exists "public"."google_ai_caller_budget_at"(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, OUT day date, OUT requests integer, OUT tokens bigint, OUT spent boolean);

drop function if exists "public"."google_ai_count_caller_budget"(p_caller text, p_day date, p_requests integer, p_tokens bigint);

drop function if exists "public"."google_ai_record_admission"(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean);

alter table "public"."google_ai_caller_budgets" add column if not exists "daily_max_usd" numeric;

alter table "public"."google_ai_caller_budgets" add column if not exists "month_bucket" date;

alter table "public"."google_ai_caller_budgets" add column if not exists "monthly_max_usd" numeric;

alter table "public"."google_ai_caller_budgets" add column if not exists "spent_month_usd" numeric not null default 0;

alter table "public"."google_ai_caller_budgets" add column if not exists "spent_today_usd" numeric not null default 0;

alter table "public"."google_ai_clients" add column if not exists "token_max_usd" numeric;

alter table "public"."google_ai_model_limits" add column if not exists "max_thinking_tokens" integer;

alter table "public"."google_ai_tokens" add column if not exists "max_usd" numeric;

alter table "public"."google_ai_tokens" add column if not exists "spent_usd" numeric not null default 0;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric)
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
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model);
  if v_budget.cause is not null then
    select 'caller_budget', v_budget.cause, v_budget.reopens_at into blocked_by, cause, reopens_at;
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
      -- (For a requester that others' shares keep slots from, a full window reopens later.)
      select v_candidate.full_by as outcome, public.google_ai_refusal_cause(v_candidate.full_by) as cause,
             case v_candidate.full_by
               when 'cooldown' then v_candidate.cooldown_until
               when 'rpd' then public.google_ai_reopens_at('rpd', p_at)
               else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
                 public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                 p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name) end as reopens_at,
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
    perform public.google_ai_count_caller_budget(p_caller.name, v_budget.day, v_budget.requests, v_budget.tokens,
      v_budget.worst) where v_budget.day is not null;
    return;
  end if;

  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  recheck_at := case when recheck_at >= reopens_at then null else recheck_at end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone)
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
  select d.day, u.requests, u.tokens, u.over into day, requests, tokens, v_over
  from (select public.google_ai_pacific_day(p_at) as day) d
  cross join lateral public.google_ai_daily_use(v_budget.day_bucket, v_budget.requests_today, v_budget.tokens_today,
    d.day, public.google_ai_request_counts(p_attempt), p_tokens, v_budget.daily_max_requests,
    v_budget.daily_max_tokens) u;
  v_day := day;
  if v_over then
    select 'budget', public.google_ai_pacific_midnight_after(p_at) into cause, reopens_at;
  elsif num_nonnulls(v_budget.daily_max_usd, v_budget.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, coalesce(p_model.booked_output_tokens,
      (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = p_model.model)));
    if worst is null or worst + (case when v_budget.day_bucket = v_day then v_budget.spent_today_usd else 0 end)
                        > v_budget.daily_max_usd then
      select 'spend_budget', case when worst is not null then public.google_ai_pacific_midnight_after(p_at) end
        into cause, reopens_at;
    elsif worst + (case when v_budget.month_bucket = date_trunc('month', v_day)::date then v_budget.spent_month_usd
                        else 0 end) > v_budget.monthly_max_usd then
      select 'spend_budget', public.google_ai_pacific_start((date_trunc('month', v_day) + interval '1 month')::date)
        into cause, reopens_at;
    end if;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_caller_budget(p_caller text, p_day date, p_requests integer, p_tokens bigint, p_worst numeric)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  update public.google_ai_caller_budgets b set day_bucket = p_day, requests_today = p_requests, tokens_today = p_tokens,
    spent_today_usd = case when b.day_bucket = p_day then b.spent_today_usd else 0 end + coalesce(p_worst, 0),
    month_bucket = date_trunc('month', p_day)::date,
    spent_month_usd = case when b.month_bucket = date_trunc('month', p_day)::date then b.spent_month_usd else 0 end
      + coalesce(p_worst, 0)
  where b.caller = p_caller;
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
  v_booked_usd numeric := p_booked_usd;  -- a service caller's worst case, booked with the quota
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_count_token then
    v_booked_usd := public.google_ai_count_token_use(p_token_id, p_client_id, p_now, p_attempt, p_estimated_tokens,
      p_model);
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
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'), p_class, p_admitted_at, v_booked_usd)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class, 'quota', p_quota)
  into v_answer;
  if p_quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select case when bool_and(c.cost is not null) then max(c.cost) end
    from public.google_ai_model_limits l
    cross join lateral (select null::text as tier
                        union select s.service_tier from public.google_ai_service_tiers s where s.model = l.model) t
    cross join lateral (select public.google_ai_call_cost(l.model, t.tier, null, 'succeeded', p_input, 0,
                          p_output + coalesce(l.max_thinking_tokens, 0), coalesce(l.max_thinking_tokens, 0)) as cost) c
    where l.model = p_model);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer, p_usd numeric DEFAULT 0)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_attempt.created_at);
  v_month date := pg_catalog.date_trunc('month', public.google_ai_pacific_day(p_attempt.created_at))::date;
begin
  if p_requests = 0 and p_tokens = 0 and coalesce(p_usd, 0) = 0 then
    return;
  end if;
  if p_attempt.token_id is not null then
    update public.google_ai_tokens t set
      requests_used = greatest(0, t.requests_used + p_requests),
      tokens_used = greatest(0, t.tokens_used + p_tokens),
      spent_usd = greatest(0, t.spent_usd + coalesce(p_usd, 0))
    where t.id = p_attempt.token_id;
    update public.google_ai_clients c set
      requests_today = case when c.day_bucket = v_day then greatest(0, c.requests_today + p_requests)
                            else c.requests_today end,
      tokens_today = case when c.day_bucket = v_day then greatest(0, c.tokens_today + p_tokens) else c.tokens_today end,
      spent_today_usd = case when c.day_bucket = v_day then greatest(0, c.spent_today_usd + coalesce(p_usd, 0))
                             else c.spent_today_usd end,
      spent_month_usd = case when c.month_bucket = v_month then greatest(0, c.spent_month_usd + coalesce(p_usd, 0))
                             else c.spent_month_usd end
    where c.id = p_attempt.client_id and (c.day_bucket = v_day or c.month_bucket = v_month);
  elsif p_attempt.client_id is null then
    -- (A service caller's day is the one its booking counted in: the attempt's day_bucket.)
    v_day := coalesce(p_attempt.day_bucket, v_day);
    v_month := pg_catalog.date_trunc('month', v_day)::date;
    update public.google_ai_caller_budgets b set
      requests_today = case when b.day_bucket = v_day then greatest(0, b.requests_today + p_requests)
                            else b.requests_today end,
      tokens_today = case when b.day_bucket = v_day then greatest(0, b.tokens_today + p_tokens) else b.tokens_today end,
      spent_today_usd = case when b.day_bucket = v_day then greatest(0, b.spent_today_usd + coalesce(p_usd, 0))
                             else b.spent_today_usd end,
      spent_month_usd = case when b.month_bucket = v_month then greatest(0, b.spent_month_usd + coalesce(p_usd, 0))
                             else b.spent_month_usd end
    where b.caller = p_attempt.caller and (b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_token_hash text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}';       -- a token's client and token, named in every answer
  v_credential record;
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking record;          -- the booking (google_ai_book_best_group): its group and key, or when to ask again
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_token_hash, p_model, p_estimated_tokens, p_request_id,
      p_attempt, p_wait_ms, p_metadata);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_caller := v_credential.caller;
    p_client_id := v_credential.client_id;
    p_token_id := v_credential.token_id;
    v_who := jsonb_build_object('client_id', p_client_id, 'token_id', p_token_id);
  end if;

  if p_idempotent and p_request_id is not null and p_attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_caller, p_request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_model);
  v_class := public.google_ai_request_class(p_priority, p_client_id);
  v_caller := row(p_caller, p_client_id, p_token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_estimated_tokens then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_exclude_key_ids, v_now, p_queue_ticket, v_new_ticket);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_estimated_tokens, p_exclude_key_ids, p_now, v_now, p_attempt);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_caller, p_request_id, p_client_id, p_token_id, v_limits.model,
      p_model, p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, p_exclude_key_ids, v_limits.rpm, v_limits.rpd,
      v_class.name, v_class.rank, v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)),
      v_booking.reopens_at, v_booking.recheck_at, p_wait_left_ms, v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, coalesce(v_place.may_book, true), v_new_ticket)
      -- How many tokens a minute allows (too large); a withdrawn model's when and successor (if a row says).
      || jsonb_build_object('max_tokens', case when v_blocked_by = 'too_large' then v_limits.tpm end)
      || case when v_blocked_by = 'withdrawn'
              then jsonb_build_object('withdrawn_at', v_limits.withdrawn_at, 'successor', v_limits.successor)
              else '{}' end
      || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_caller, p_request_id, p_client_id, p_token_id,
    v_limits.model, p_model, p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, v_class.name,
    v_booking.booked_group, v_booking.key_id, v_booking.key_alias, v_booking.env_var_name, v_booking.minute_bucket,
    v_booking.day_bucket, v_booking.admitted_at, v_booking.quota, v_place.ticket,
    p_idempotent and p_request_id is not null, p_token_hash is not null, v_booking.booked_usd);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_token_hash is null then v_answer else v_answer || v_who end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text)
 RETURNS numeric
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_now);
  v_month date := pg_catalog.date_trunc('month', public.google_ai_pacific_day(p_now))::date;
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_worst numeric;
begin
  select public.google_ai_worst_call_cost(p_model, p_estimated_tokens, c.max_output_tokens) into v_worst
  from public.google_ai_clients c join public.google_ai_tokens t on t.id = p_token_id
  where c.id = p_client_id and num_nonnulls(c.daily_max_usd, c.monthly_max_usd, t.max_usd) > 0;
  update public.google_ai_tokens t set
    requests_used = t.requests_used + v_count_request,
    tokens_used = t.tokens_used + p_estimated_tokens,
    spent_usd = t.spent_usd + coalesce(v_worst, 0),
    last_used_at = p_now
  where t.id = p_token_id;
  update public.google_ai_clients c set
    day_bucket = v_day,
    (requests_today, tokens_today) = (select u.requests, u.tokens
      from public.google_ai_daily_use(c.day_bucket, c.requests_today, c.tokens_today, v_day, v_count_request,
        p_estimated_tokens, null, null) u),
    spent_today_usd = case when c.day_bucket = v_day then c.spent_today_usd else 0 end + coalesce(v_worst, 0),
    month_bucket = v_month,
    spent_month_usd = case when c.month_bucket = v_month then c.spent_month_usd else 0 end + coalesce(v_worst, 0)
  where c.id = p_client_id;
  return v_worst;
end
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
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens, max_usd)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens, v_client.token_max_usd)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models), 'budget', jsonb_build_object('max_requests',
      v_max_requests, 'max_tokens', v_max_tokens));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_day_over boolean;
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_worst numeric;     -- the most the call may cost, where the token or its client has a budget in money
  v_cause text;
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_model := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  select u.over into v_day_over
  from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day,
    v_count_request, p_estimated_tokens, v_client.daily_max_requests, v_client.daily_max_tokens) u;
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_estimated_tokens, v_client.max_output_tokens);
  end if;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_limit := 'token_revoked';
  elsif v_token.expires_at <= p_now then
    v_limit := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null and v_token.tokens_used + p_estimated_tokens > v_token.max_tokens) then
    v_limit := 'token_budget';
  elsif v_token.max_usd is not null and (v_worst is null or v_token.spent_usd + v_worst > v_token.max_usd) then
    select 'token_budget', 'spend_budget' into v_limit, v_cause; -- (never reopens: the token's whole life)
  elsif v_day_over then
    v_limit := 'client_budget';
    v_retry_at := public.google_ai_pacific_midnight_after(p_now);
  -- A budget in money: the day's (then the month's) spend with this call's worst case over it, or a
  -- price not known (no reopening: only a price row admits it).
  elsif v_client.daily_max_usd is not null and (v_worst is null or v_worst + case when v_client.day_bucket = v_day
        then v_client.spent_today_usd else 0 end > v_client.daily_max_usd) then
    select 'client_budget', 'spend_budget', case when v_worst is not null
      then public.google_ai_pacific_midnight_after(p_now) end into v_limit, v_cause, v_retry_at;
  elsif v_client.monthly_max_usd is not null and (v_worst is null or v_worst + case when v_client.month_bucket = v_month
        then v_client.spent_month_usd else 0 end > v_client.monthly_max_usd) then
    select 'client_budget', 'spend_budget', case when v_worst is not null
      then public.google_ai_pacific_start((v_month + interval '1 month')::date) end into v_limit, v_cause, v_retry_at;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request_id, caller, client_id, token_id, v_model, p_model, coalesce(p_attempt, 1),
    p_estimated_tokens, v_limit, coalesce(v_cause, public.google_ai_refusal_cause(v_limit)), v_retry_ms, p_wait_ms,
    coalesce(p_metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', coalesce(v_cause,
    public.google_ai_refusal_cause(v_limit)),
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_caller_budgets."daily_max_usd" is 'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: no limit), booked and settled as a client''s (spent_today_usd, spent_month_usd): its request names no largest answer, so the worst case books the model''s booked_output_tokens, else its catalogued output limit. Refusal caller_budget with cause spend_budget until the day or month ends.';
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit), beside its token and request budgets: a reservation books its worst case (its input, max_output_tokens and the model''s thinking at the dearest price it may be served at, google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, finalize settles them on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
comment on column public.google_ai_clients."token_max_usd" is 'The budget in money each token minted from now on gets (google_ai_tokens.max_usd; null: none).';
revoke all on function public.google_ai_count_caller_budget(p_caller text, p_day date, p_requests integer, p_tokens bigint, p_worst numeric) from public, anon, authenticated, service_role;
comment on column public.google_ai_model_limits."max_thinking_tokens" is 'The most a call may think beyond its maxOutputTokens (Gemini''s thinkingBudget ceiling; thinking bills as output): a budget in money books it (google_ai_worst_call_cost). Null: the model''s thinking is within its answer''s limit (OpenAI''s reasoning, within max_completion_tokens) or it does not think. Where the figure came from: limits_source.';
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric) from public, anon, authenticated, service_role;
comment on column public.google_ai_tokens."max_usd" is 'The most the token''s calls may cost in US dollars over its life (at most 12 hours, so no day or month of its own; null: no limit), beside its client''s budgets: booked and settled as the client''s are (spent_usd); refused with limit token_budget, cause spend_budget, never reopening (a new token has its own).';
revoke all on function public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer) from public, anon, authenticated, service_role;
