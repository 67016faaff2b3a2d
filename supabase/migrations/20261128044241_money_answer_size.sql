-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: One answer's size for TPM and money: the reservation takes the answer each model is sent
--   with (p_output_tokens), a budget in money books it at the tiers of the caller's class; budget refusals
--   name their period; the quota route and the mint answer show the budgets in money
set check_function_bodies = off;

drop function if exists public.google_ai_model_provider(p_model text);

drop function if exists "public"."google_ai_admit_at"(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_client_id uuid, p_token_id uuid, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_token_hash text);

drop function if exists "public"."google_ai_book_best_group"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric);

drop function if exists "public"."google_ai_caller_budget_at"(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone);

drop function if exists "public"."google_ai_count_token_use"(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text);

drop function if exists "public"."google_ai_fall_back_at"(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer);

drop function if exists "public"."google_ai_reserve_models"(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid);

drop function if exists "public"."google_ai_reserve_models_at"(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid);

drop function if exists "public"."google_ai_token_verdict_at"(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid);

drop function if exists "public"."google_ai_worst_call_cost"(p_model text, p_input integer, p_output integer);

drop function if exists "public"."google_ai_model_provider"(p_model text);

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
              when v_booking.budget_period is not null then jsonb_build_object('period', v_booking.budget_period)
              else '{}' end
      || v_who;
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

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
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

CREATE OR REPLACE FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_worst numeric)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_now);
  v_month date := pg_catalog.date_trunc('month', public.google_ai_pacific_day(p_now))::date;
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_worst numeric := p_worst;
begin
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
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_output_tokens integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]';   -- every model's refusal, in order
  v_steps jsonb := '[]';      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_token_hash, p_queue_ticket);
  for i in v_chain.first .. cardinality(v_chain.models) loop
    if v_chain.retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_chain.models[i]);
    else
      begin
        v_try := public.google_ai_admit_at(p_now => p_now, p_model => v_chain.names[i],
          p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
          p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
          p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
          p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_token_hash => p_token_hash,
          p_output_tokens => p_output_tokens[array_position(p_models, v_chain.names[i])]);
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and ((v_try ->> 'limit') = any (c_model_limits)
                or public.google_ai_queue_turns(v_try ->> 'limit') is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_queue_ticket is not null then
      delete from public.google_ai_queue q where q.ticket_id = p_queue_ticket and q.model = v_chain.models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, coalesce(v_chain.caller, p_caller, 'token'), v_chain.client_id,
      v_chain.token_id, v_chain.models[i], p_models[1],
      p_attempt, p_estimated_tokens, v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint,
      p_wait_ms, coalesce(p_metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_chain.models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return public.google_ai_reserve_models_at(null, p_models, p_estimated_tokens, p_caller, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms,
    p_reply_by, p_hold_until, p_holder, p_output_tokens);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}');
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_caller = '' or array_position(p_models, null) is not null or array_position(p_models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_estimated_tokens is null or p_estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_output_tokens is not null and (cardinality(p_output_tokens) <> cardinality(p_models)
                                      or 0 > any (p_output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_reply_by, 'hold_until', p_hold_until, 'holder', p_holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_queue_reply_check).
  perform pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  if cardinality(p_models) > 1 then
    return public.google_ai_fall_back_at(p_now => p_now, p_models => p_models,
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
      p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
      p_wait_ms => p_wait_ms, p_metadata => v_metadata, p_idempotent => p_idempotent,
      p_priority => p_priority, p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms,
      p_output_tokens => p_output_tokens);
  end if;
  return public.google_ai_admit_at(p_now => p_now, p_model => p_models[1],
    p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
    p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
    p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
    p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_token_hash => p_token_hash,
    p_output_tokens => p_output_tokens[1]);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_output integer, p_priority text, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
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
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
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
    worst := public.google_ai_worst_call_cost(v_model, p_estimated_tokens, p_output,
      (public.google_ai_request_class(p_priority, v_client.id)).name);
  end if;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_limit := 'token_revoked';
  elsif v_token.expires_at <= p_now then
    v_limit := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null and v_token.tokens_used + p_estimated_tokens > v_token.max_tokens) then
    select 'token_budget', 'life' into v_limit, v_period;
  elsif v_token.max_usd is not null and (worst is null or v_token.spent_usd + worst > v_token.max_usd) then
    select 'token_budget', 'spend_budget', 'life' into v_limit, v_cause, v_period; -- (never reopens)
  elsif v_day_over then
    select 'client_budget', 'day' into v_limit, v_period;
    v_retry_at := public.google_ai_pacific_midnight_after(p_now);
  -- A budget in money: the day's (then the month's) spend with this call's worst case over it, or a
  -- price not known (no reopening: only a price row admits it).
  elsif v_client.daily_max_usd is not null and (worst is null or worst + case when v_client.day_bucket = v_day
        then v_client.spent_today_usd else 0 end > v_client.daily_max_usd) then
    select 'client_budget', 'spend_budget', 'day', case when worst is not null
      then public.google_ai_pacific_midnight_after(p_now) end into v_limit, v_cause, v_period, v_retry_at;
  elsif v_client.monthly_max_usd is not null and (worst is null or worst + case when v_client.month_bucket = v_month
        then v_client.spent_month_usd else 0 end > v_client.monthly_max_usd) then
    select 'client_budget', 'spend_budget', 'month', case when worst is not null
      then public.google_ai_pacific_start((v_month + interval '1 month')::date) end
      into v_limit, v_cause, v_period, v_retry_at;
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
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_usd_left(p_max numeric, p_current boolean, p_spent numeric)
 RETURNS numeric
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ select p_max operator(pg_catalog.-) least(p_max, case when p_current then p_spent else 0 end) $function$
;

CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer, p_class text)
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
                        union select s.service_tier from public.google_ai_service_tiers s
                        where s.model = l.model and s.priority_class = p_class) t
    cross join lateral (select public.google_ai_call_cost(l.model, t.tier, null, 'succeeded', p_input, 0,
                          p_output + coalesce(l.max_thinking_tokens, 0), coalesce(l.max_thinking_tokens, 0)) as cost) c
    where l.model = p_model and p_output is not null);
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
  v_day date := public.google_ai_pacific_day(pg_catalog.clock_timestamp());
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
      v_max_requests, 'max_tokens', v_max_tokens,
      -- The budgets in money that apply to the token's calls: its own for its life, its client's left of
      -- the Pacific day and month (null: none).
      'max_usd', v_client.token_max_usd,
      'daily_usd_left', public.google_ai_usd_left(v_client.daily_max_usd, v_client.day_bucket = v_day,
        v_client.spent_today_usd),
      'monthly_usd_left', public.google_ai_usd_left(v_client.monthly_max_usd,
        v_client.month_bucket = pg_catalog.date_trunc('month', v_day)::date, v_client.spent_month_usd)));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_provider(p_model text)
 RETURNS TABLE(provider text, booked_output_tokens integer, answer_tokens integer)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select l.provider, l.booked_output_tokens,
         coalesce(l.booked_output_tokens,
                  (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = l.model))
  from public.google_ai_model_limits l where l.model = p_model
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
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_max_requests integer;
  v_max_tokens bigint;
  v_requests_today integer;
  v_tokens_today bigint;
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  -- The budgets in money of the Pacific day and month that apply (a token's client's, or the service
  -- caller's row), and their running totals of this day and month (null: no row to hold them).
  v_daily_usd numeric;
  v_monthly_usd numeric;
  v_today_usd numeric;
  v_month_usd numeric;
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
    v_max_requests := v_client.daily_max_requests;
    v_max_tokens := v_client.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day, 0, 0,
      null, null) u;
    select v_client.daily_max_usd, v_client.monthly_max_usd,
           case when v_client.day_bucket = v_day then v_client.spent_today_usd else 0 end,
           case when v_client.month_bucket = v_month then v_client.spent_month_usd else 0 end
      into v_daily_usd, v_monthly_usd, v_today_usd, v_month_usd;
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_max_requests := v_caller_budget.daily_max_requests;
    v_max_tokens := v_caller_budget.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_caller_budget.day_bucket, v_caller_budget.requests_today,
      v_caller_budget.tokens_today, v_day, 0, 0, null, null) u;
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
    if v_caller_budget.caller is not null then
      select v_caller_budget.daily_max_usd, v_caller_budget.monthly_max_usd,
             case when v_caller_budget.day_bucket = v_day then v_caller_budget.spent_today_usd else 0 end,
             case when v_caller_budget.month_bucket = v_month then v_caller_budget.spent_month_usd else 0 end
        into v_daily_usd, v_monthly_usd, v_today_usd, v_month_usd;
    end if;
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
      'daily_requests_left', public.google_ai_budget_left(v_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_max_requests is not null or v_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end,
      -- The budgets in money that apply, and what is left of each (booked worst cases included; null:
      -- none): the token's for its life, and its client's, or the service caller's, day and month.
      'token_max_usd', v_token.max_usd,
      'token_usd_left', public.google_ai_usd_left(v_token.max_usd, true, v_token.spent_usd),
      'daily_max_usd', v_daily_usd,
      'daily_usd_left', v_daily_usd - least(v_daily_usd, v_today_usd),
      'monthly_max_usd', v_monthly_usd,
      'monthly_usd_left', v_monthly_usd - least(v_monthly_usd, v_month_usd),
      'usd_applies_to', case when p_token_hash is not null then 'client' when v_caller_budget.caller is not null
                             then 'caller' end),
    -- The spend of the Pacific day and month from the running totals of the client's or the service
    -- caller's row (calls in flight at their worst case where it has a budget in money); null for a
    -- service caller without a row (google_ai_spend_daily has it).
    'spend', case when v_today_usd is not null then jsonb_build_object('today_usd', v_today_usd,
               'month_usd', v_month_usd) end,
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
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
    perform public.google_ai_count_token_use(p_token_id, p_client_id, p_now, p_attempt, p_estimated_tokens,
      p_booked_usd);
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

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_admit_at(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_client_id uuid, p_token_id uuid, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_token_hash text, p_output_tokens integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric, OUT budget_period text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) from public, anon, authenticated, service_role;
comment on column public.google_ai_caller_budgets."daily_max_usd" is 'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: no limit), booked and settled as a client''s (spent_today_usd, spent_month_usd): the worst case books the answer the request is sent with (its own max_tokens, else the model''s answer_tokens, then sent as its cap). Refusal caller_budget with cause spend_budget until the day or month ends.';
revoke all on function public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_worst numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_output_tokens integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_model_provider(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_model_provider(p_model text) to service_role;
grant execute on function public.google_ai_model_provider(p_model text) to eve_gateway;
revoke all on function public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to service_role;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to eve_gateway;
revoke all on function public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_output integer, p_priority text, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_usd_left(p_max numeric, p_current boolean, p_spent numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer, p_class text) from public, anon, authenticated, service_role;
