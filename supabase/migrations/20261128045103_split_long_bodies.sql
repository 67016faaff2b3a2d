-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the longest function bodies split into named steps: the quota report's owner budgets
--   (google_ai_quota_report_owner), a full group's reopening (google_ai_full_group_reopens_at), and a
--   refusal's answer built whole by google_ai_refusal_at
set check_function_bodies = off;

drop function if exists "public"."google_ai_refusal_at"(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_rpm integer, p_rpd integer, p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid);

CREATE OR REPLACE FUNCTION public.google_ai_full_group_reopens_at(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
  select case p_full_by
           when 'cooldown' then p_cooldown_until
           when 'rpd' then public.google_ai_reopens_at('rpd', p_at)
           else public.google_ai_window_reopens_for(p_quota_group, p_model.model, p_at,
             public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
             p_model.rpm, p_model.tpm, p_tokens, p_class, p_caller) end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_owner(p_now timestamp with time zone, p_row boolean, p_max_requests integer, p_max_tokens bigint, p_day_bucket date, p_requests_today integer, p_tokens_today bigint, p_daily_usd numeric, p_monthly_usd numeric, p_month_bucket date, p_spent_today_usd numeric, p_spent_month_usd numeric)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'daily_requests_left', public.google_ai_budget_left(p_max_requests, u.requests),
    'daily_tokens_left', public.google_ai_budget_left(p_max_tokens, u.tokens),
    'daily_resets_at', case when p_max_requests is not null or p_max_tokens is not null
                            then public.google_ai_pacific_midnight_after(p_now) end,
    'daily_max_usd', p_daily_usd,
    'daily_usd_left', p_daily_usd - least(p_daily_usd, s.today),
    'monthly_max_usd', p_monthly_usd,
    'monthly_usd_left', p_monthly_usd - least(p_monthly_usd, s.month),
    'spend', case when s.today is not null then jsonb_build_object('today_usd', s.today, 'month_usd', s.month) end)
  from (select public.google_ai_pacific_day(p_now) as day) d
  cross join lateral public.google_ai_daily_use(p_day_bucket, p_requests_today, p_tokens_today, d.day, 0, 0,
    null, null) u
  cross join lateral (select case when p_row then case when p_day_bucket = d.day then p_spent_today_usd else 0 end
                             end as today,
                             case when p_row then case when p_month_bucket = pg_catalog.date_trunc('month', d.day)::date
                                                       then p_spent_month_usd else 0 end end as month) s
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_limits public.google_ai_model_limits, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid, p_period text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_reopens_at timestamptz := p_reopens_at;
  v_recheck_at timestamptz := p_recheck_at;
  v_retry_ms bigint;
  v_said jsonb := jsonb_build_object('max_tokens', case when p_limit = 'too_large' then p_limits.tpm end)
    || case when p_limit = 'withdrawn'
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_period is not null then jsonb_build_object('period', p_period)
            else '{}' end;
begin
  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now => p_now, p_model => p_limits.model,
    p_requested_model => p_requested_model, p_rpm => p_limits.rpm, p_rpd => p_limits.rpd,
    p_exclude_key_ids => p_exclude_key_ids,
    p_caller => p_caller, p_client_id => p_client_id, p_token_id => p_token_id, p_request_id => p_request_id,
    p_tokens => p_estimated_tokens, p_class => p_class, p_rank => p_rank, p_ticket => p_ticket, p_turn => p_turn,
    p_since => p_since, p_new_ticket => p_new_ticket, p_limit => p_limit, p_cause => p_cause,
    p_booking_tried => p_booking_tried, p_reopens_at => p_reopens_at, p_recheck_at => p_recheck_at,
    p_wait_left_ms => p_wait_left_ms) w
  where public.google_ai_queue_turns(p_limit) is not null and coalesce(p_wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_wait_left_ms, 0) > 0 then v_wait.turn_at else p_turn_at end, v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, refusal_cause = p_cause, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  if coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, coalesce(p_limits.model, p_requested_model),
      p_requested_model, p_attempt, p_estimated_tokens, p_limit, p_cause, v_retry_ms, p_wait_ms,
      coalesce(p_metadata, '{}'));
  end if;
  return jsonb_build_object('ok', false, 'limit', p_limit, 'cause', p_cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_token_hash text DEFAULT NULL::text, p_output_tokens integer DEFAULT NULL::integer)
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
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
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
      p_attempt, p_wait_ms, p_metadata, p_output_tokens, p_priority);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_caller := v_credential.caller;
    p_client_id := v_credential.client_id;
    p_token_id := v_credential.token_id;
    v_worst := v_credential.worst;
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
    p_estimated_tokens, p_exclude_key_ids, p_now, v_now, p_attempt, p_output_tokens);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_caller, p_request_id, p_client_id, p_token_id, v_limits, p_model,
      p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, p_exclude_key_ids, v_class.name, v_class.rank,
      v_blocked_by, coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)),
      v_booking.reopens_at, v_booking.recheck_at, p_wait_left_ms, v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, coalesce(v_place.may_book, true), v_new_ticket, v_booking.budget_period) || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_caller, p_request_id, p_client_id, p_token_id,
    v_limits.model, p_model, p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, v_class.name,
    v_booking.booked_group, v_booking.key_id, v_booking.key_alias, v_booking.env_var_name, v_booking.minute_bucket,
    v_booking.day_bucket, v_booking.admitted_at, v_booking.quota, v_place.ticket,
    p_idempotent and p_request_id is not null, p_token_hash is not null,
    coalesce(v_booking.booked_usd, v_worst));
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_token_hash is null then v_answer else v_answer || v_who end;
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
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner jsonb;  -- the day's and month's budgets of the token's client or the service caller, and `spend`
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    if not found then
      return jsonb_build_object('ok', false, 'status', 'token_invalid');
    end if;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    if v_token.revoked_at is not null or v_client.revoked_at is not null then
      return jsonb_build_object('ok', false, 'status', 'token_revoked');
    elsif v_token.expires_at <= v_now then
      return jsonb_build_object('ok', false, 'status', 'token_expired');
    end if;
    v_models := v_token.models;
    v_owner := public.google_ai_quota_report_owner(v_now, true, v_client.daily_max_requests,
      v_client.daily_max_tokens, v_client.day_bucket, v_client.requests_today, v_client.tokens_today,
      v_client.daily_max_usd, v_client.monthly_max_usd, v_client.month_bucket, v_client.spent_today_usd,
      v_client.spent_month_usd);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_owner := public.google_ai_quota_report_owner(v_now, v_caller_budget.caller is not null,
      v_caller_budget.daily_max_requests, v_caller_budget.daily_max_tokens, v_caller_budget.day_bucket,
      v_caller_budget.requests_today, v_caller_budget.tokens_today, v_caller_budget.daily_max_usd,
      v_caller_budget.monthly_max_usd, v_caller_budget.month_bucket, v_caller_budget.spent_today_usd,
      v_caller_budget.spent_month_usd);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    -- (A service caller has no token: its token fields are null.)
    'budget', jsonb_build_object(
      'token_requests_left', public.google_ai_budget_left(v_token.max_requests, v_token.requests_used),
      'token_tokens_left', public.google_ai_budget_left(v_token.max_tokens, v_token.tokens_used),
      'token_expires_at', v_token.expires_at,
      -- The budgets in money that apply, and what is left of each (booked worst cases included; null:
      -- none): the token's for its life, and its client's, or the service caller's, day and month.
      'token_max_usd', v_token.max_usd,
      'token_usd_left', public.google_ai_usd_left(v_token.max_usd, true, v_token.spent_usd),
      'usd_applies_to', case when p_token_hash is not null then 'client' when v_caller_budget.caller is not null
                             then 'caller' end) || (v_owner - 'spend'),
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_owner -> 'spend',
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_full_group_reopens_at(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_quota_report_owner(p_now timestamp with time zone, p_row boolean, p_max_requests integer, p_max_tokens bigint, p_day_bucket date, p_requests_today integer, p_tokens_today bigint, p_daily_usd numeric, p_monthly_usd numeric, p_month_bucket date, p_spent_today_usd numeric, p_spent_month_usd numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_at(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_limits public.google_ai_model_limits, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid, p_period text) from public, anon, authenticated, service_role;
