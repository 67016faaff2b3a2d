-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The request record carries its holder and reply_by (no $holder in metadata, no
--   google_ai.reply_by setting; a queue ticket's reply_by column), typed admission verdicts
--   (google_ai_admission_verdict), one writer of refused rows (google_ai_log_refusal), google_ai_outcome
--   renamed google_ai_limit_verdict, the fallback chain's results named o_*
set check_function_bodies = off;

drop function if exists public.google_ai_log_refusal(p_request public.google_ai_request, p_model text, p_limit text, p_cause text, p_retry_ms bigint);

drop function if exists public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request);

drop function if exists public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal);

drop function if exists public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer);

drop function if exists public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone);

drop function if exists public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]);

drop function if exists public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request);

drop function if exists public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer);

drop function if exists public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request);

drop function if exists public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer);

drop function if exists public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone);

drop function if exists public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer);

drop function if exists public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal);

drop trigger if exists "google_ai_attempts_holder" on "public"."google_ai_attempts";

drop trigger if exists "google_ai_queue_reply_check" on "public"."google_ai_queue";

drop function if exists "public"."google_ai_fallback_chain"(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone, OUT names text[], OUT models text[], OUT retired boolean[], OUT answer_of integer[], OUT first integer, OUT caller text, OUT client_id uuid, OUT token_id uuid);

drop function if exists "public"."google_ai_holder_time"(p_holder jsonb, p_key text);

drop type if exists "public"."google_ai_outcome";

drop type if exists "public"."google_ai_token_verdict";

drop type if exists "public"."google_ai_request";

alter table "public"."google_ai_queue" add column if not exists "reply_by" timestamp with time zone;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_admission_verdict"') is null then
    create type "public"."google_ai_admission_verdict" as ("ok" boolean, "limit_hit" text, "cause" text, "retry_after_ms" bigint, "retry_at" timestamp with time zone, "model" text, "successor" text, "reservation_id" uuid, "ticket" uuid, "answer" jsonb);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_limit_verdict"') is null then
    create type "public"."google_ai_limit_verdict" as ("outcome" text, "cause" text, "window_full" boolean);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_request"') is null then
    create type "public"."google_ai_request" as ("model" text, "caller" text, "client_id" uuid, "token_id" uuid, "token_hash" text, "request_id" text, "attempt" integer, "estimated_tokens" integer, "output_tokens" integer, "wait_ms" integer, "wait_left_ms" integer, "metadata" jsonb, "priority" text, "exclude_key_ids" uuid[], "queue_ticket" uuid, "idempotent" boolean, "requests" integer, "reply_by" timestamp with time zone, "hold_until" timestamp with time zone, "holder" uuid);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_token_verdict"') is null then
    create type "public"."google_ai_token_verdict" as ("refusal" public.google_ai_admission_verdict, "request" public.google_ai_request, "worst" numeric);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer, OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1
    into o_names, o_models, o_retired, o_answer_of, o_first;
  if p_token_hash is not null then
    select public.google_ai_token_models(t, c), t.id, c.id, 'client:' || c.name
      into v_allowed, o_token_id, o_client_id, o_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (o_models);
      exit when cardinality(o_models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      o_names := o_names || v_name;
      o_models := o_models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      o_retired := o_retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      o_answer_of := o_answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if not (false = any (o_retired)) then
    o_retired := array_fill(false, array[cardinality(o_models)]);
  end if;
  if p_queue_ticket is not null then
    o_first := coalesce(array_position(o_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_log_refusal(p_request public.google_ai_request, p_model text, p_limit text, p_cause text, p_retry_ms bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata, requests, reply_by,
    hold_until, holder)
  values ('refused', p_request.request_id, p_request.caller, p_request.client_id, p_request.token_id, p_model,
    p_request.model, coalesce(p_request.attempt, 1), p_request.estimated_tokens, p_limit, p_cause, p_retry_ms,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), coalesce(p_request.requests, 1), p_request.reply_by,
    p_request.hold_until, p_request.holder);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_verdict public.google_ai_admission_verdict;
  v_who jsonb;               -- a token's client and token, named in every answer of a token's request
  v_credential public.google_ai_token_verdict;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  v_new_ticket uuid := gen_random_uuid();  -- a ticket taken now (tickets of one instant are ordered by it)
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if (v_credential.refusal).ok is not null then
      return v_credential.refusal;
    end if;
    p_request := v_credential.request;  -- the token's client is the caller from here on
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_verdict := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_verdict.answer is not null then
      v_verdict.answer := v_verdict.answer || coalesce(v_who, '{}');
      return v_verdict;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_request.estimated_tokens
                         or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens
                                            - case when v_limits.booked_output_tokens is not null
                                                   then coalesce(p_request.output_tokens, 0) else 0 end
                         or (p_request.requests > 1 and public.google_ai_requests_over(v_now, v_limits,
                               p_request.requests, p_request.exclude_key_ids) is not null)
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket, p_request.requests);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens,
    p_request.requests);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    v_verdict := public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal);
  else
    v_verdict := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
      v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
      case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  end if;
  if v_who is not null then  -- (a service caller's answer is not encoded again for an empty object)
    v_verdict.answer := v_verdict.answer || v_who;
  end if;
  return v_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if new.request_id is null or new.holder is null then
    return new;
  end if;
  update public.google_ai_responses r set
    expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
    holder = new.holder
  where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
    and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
    and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, pg_catalog.clock_timestamp())
        is not null;
  return new;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_limit_verdict
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester's p_requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif p_paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_limit_verdict;
  elsif p_spread_at is not null then
    return row(p_spread_limit, 'spread', false)::public.google_ai_limit_verdict;
  end if;
  return row('booked', null, false)::public.google_ai_limit_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_booking_verdict
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  paced_until timestamptz; spread_at timestamptz; live bigint[]; owned bigint[]; kept jsonb;
  input_until timestamptz; output_until timestamptz;  -- its answer's fields
  v_class text := p_class.name;
  v_caller text := p_caller.name;
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}'::bigint[];
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[]; v_pace_used integer[]; v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict public.google_ai_limit_verdict;
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = v_class, false) as for_class,
           coalesce(s.priority_class = v_class, false) or coalesce(s.caller = v_caller, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_at.day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_at.at, p_at.minute, v_share.ring_low, v_share.ring,
                          v_share.window_requests, null)).sum_requests end;
    live := live || v_share.id;
    v_reserved_rpd := v_reserved_rpd + v_share.rpd_share;
    if v_share.is_owned then
      owned := owned || v_share.id;
      v_in_share := v_in_share or coalesce(v_win < v_share.reserved_rpm, false);
      if v_share.pace_burst is not null then
        v_pace_burst := v_pace_burst || v_share.pace_burst;
        v_pace_kept := v_pace_kept || v_share.rpd_share;
        v_pace_used := v_pace_used || v_share.day[1];
        v_pace_next := v_pace_next || v_share.day[2];
      end if;
    else
      v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_win);
      v_held := array[v_held[1] + greatest(0, v_share.rpd_share - v_share.day[1]),
                      v_held[2] + greatest(0, v_share.rpd_share - v_share.day[2]),
                      v_held[3] + greatest(0, v_share.rpd_share - v_share.day[3])];
    end if;
    v_kept := case when v_share.for_class
                   then array[v_kept[1], v_kept[2] + coalesce(v_share.reserved_rpm, 0), v_kept[3],
                              v_kept[4] + v_share.rpd_share]
                   else array[v_kept[1] + coalesce(v_share.reserved_rpm, 0), v_kept[2],
                              v_kept[3] + v_share.rpd_share, v_kept[4]] end;
  end loop;

  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_at.at, p_at.day, p_model.rpd, v_reserved_rpd, v_pace_burst,
      v_pace_kept, v_pace_used, v_pace_next, p_at.zone, p_requests);
  end if;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    -- (No bucket, Google's and OpenAI's rows: the spread alone, as google_ai_schedule_place has it, one call less.)
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm, p_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class.rank, p_counter.spread_until, p_counter.input_until,
      p_counter.output_until, p_at.at, p_at.minute, p_tokens, p_output, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_at, v_held_rpm, v_held, paced_until,
    spread_at, v_step.limit_name, p_requests);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until)::public.google_ai_booking_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try public.google_ai_admission_verdict;
  v_served boolean := false;  -- v_try is the answer: admitted, queued, or a refusal no other model can change
  v_best jsonb;
  v_refusals public.google_ai_admission_verdict[];   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, cause, retry_after_ms} of each model passed over
  v_refused public.google_ai_request;  -- the request as a passed-over model's refused row names it
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, p_now);
  for i in v_chain.o_first .. cardinality(v_chain.o_models) loop
    if v_chain.o_retired[i] then
      v_try := row(false, 'retired', 'retired', null, null, v_chain.o_models[i], null, null, null,
        jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
          'model', v_chain.o_models[i]))::public.google_ai_admission_verdict;
    else
      begin
        p_request.model := v_chain.o_names[i];
        p_request.output_tokens := p_output_tokens[v_chain.o_answer_of[i]];
        v_try := public.google_ai_admit_at(p_now, p_request);
        if not v_try.ok and v_try.ticket is null and (v_try.limit_hit = any (c_model_limits)
                                                      or public.google_ai_queue_turns(v_try.limit_hit) is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_served := true;
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_served;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_request.queue_ticket is not null then
      delete from public.google_ai_queue q
      where q.ticket_id = p_request.queue_ticket and q.model = v_chain.o_models[i];
    end if;

    v_refusals := v_refusals || v_try;
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.o_models[i], 'limit', v_try.limit_hit,
      'cause', v_try.cause, 'retry_after_ms', v_try.retry_after_ms));
    -- (A model without a key once the request's own exclusions are set aside is no attempt either:
    -- google_ai_refusal_at.)
    continue when v_try.limit_hit = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0;
    -- Its row names the chain's caller (a token's client) and the model the request asked for.
    v_refused := p_request;
    v_refused.model := p_models[1];
    v_refused.caller := coalesce(v_chain.o_caller, p_request.caller, 'token');
    v_refused.client_id := v_chain.o_client_id;
    v_refused.token_id := v_chain.o_token_id;
    perform public.google_ai_log_refusal(v_refused, v_chain.o_models[i], v_try.limit_hit, v_try.cause,
      v_try.retry_after_ms);
  end loop;

  if v_served then
    if v_try.model is distinct from v_chain.o_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if v_try.ok then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = v_try.reservation_id;
      elsif v_try.ticket is not null then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = v_try.ticket;
      end if;
    end if;
    return v_try.answer || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.answer into v_best from unnest(v_refusals) with ordinality r
  order by r.retry_at nulls last, (r.limit_hit = 'retired'), r.ordinality
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
  v_retry_ms bigint;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return row(false, 'duplicate', 'duplicate', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
        'retry_after_ms', null, 'retry_at', null))::public.google_ai_admission_verdict;
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      v_retry_ms := greatest(1000, public.google_ai_ms_until(v_held_until, p_now));
      return row(false, 'in_progress', 'in_progress', v_retry_ms, v_held_until, null, null, null, null,
        jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
          'retry_after_ms', v_retry_ms, 'retry_at', v_held_until))::public.google_ai_admission_verdict;
    end if;
  end if;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, p_class.name, p_request.caller);
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests, waits_for, reply_by)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name),
      p_request.reply_by)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for, reply_by = excluded.reply_by
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
  v_reservation uuid;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests, reply_by, hold_until,
    holder)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests, p_request.reply_by, p_request.hold_until, p_request.holder)
  returning a.reservation_id, jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_reservation, v_answer;
  -- The claim after the attempt row, with the request's holder (google_ai_hold_request).
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return row(false, 'withdrawn', 'shut_down', null, null, p_limits.model, p_limits.successor, null, null,
        jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
          'model', p_limits.model) || v_said)::public.google_ai_admission_verdict;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return row(false, v_limit, p_refusal.cause, public.google_ai_ms_until(v_wait.expected, p_now), v_wait.expected,
      p_limits.model, null, null, coalesce(p_refusal.ticket, p_refusal.new_ticket),
      v_wait.answer || v_said)::public.google_ai_admission_verdict;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    perform public.google_ai_log_refusal(p_request, coalesce(p_limits.model, p_request.model), v_limit,
      p_refusal.cause, v_retry_ms);
  end if;
  return row(false, v_limit, p_refusal.cause, v_retry_ms, v_reopens_at, p_limits.model, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at, 'model', p_limits.model,
      'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said
    )::public.google_ai_admission_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reply_check()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception 'the % row of request % reached its commit after its caller stopped waiting (%); rolled back',
      tg_table_name, new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_request public.google_ai_request;
  v_verdict public.google_ai_admission_verdict;
begin
  if p_call.models is null or cardinality(p_call.models) = 0 or cardinality(p_call.models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_call.caller is null) = (p_call.token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_call.caller = '' or array_position(p_call.models, null) is not null
     or array_position(p_call.models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_call.estimated_tokens is null or p_call.estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_call.output_tokens is not null and (cardinality(p_call.output_tokens) <> cardinality(p_call.models)
                                      or 0 > any (p_call.output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_call.requests < 1 then
    raise exception 'p_requests must be a positive integer' using errcode = '22023';
  end if;
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, coalesce(p_call.metadata, '{}'::jsonb), p_call.priority,
    coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket, coalesce(p_call.idempotent, false),
    coalesce(p_call.requests, 1), p_call.reply_by,
    -- (hold_until: the later of the two when both are named, else none)
    case when p_call.hold_until >= p_call.reply_by then p_call.hold_until
         when p_call.hold_until is not null then p_call.reply_by end,
    case when p_call.reply_by is not null then p_call.holder end);
  if cardinality(p_call.models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  v_verdict := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if v_verdict.successor is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_verdict.answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_token_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_worst numeric;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    return row(row(false, 'token_invalid', 'token_invalid', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid', 'retry_after_ms', null)
      )::public.google_ai_admission_verdict, null, null)::public.google_ai_token_verdict;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  -- The token's client is the caller from here on.
  p_request.caller := 'client:' || v_client.name;
  p_request.client_id := v_client.id;
  p_request.token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  -- (google_ai_token_models' rule, as two tests: a call of it would cost more than the check.)
  if v_limit is null and not (v_model = any (v_token.models) and v_model = any (v_client.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      v_worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return row(null, p_request, v_worst)::public.google_ai_token_verdict;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  perform public.google_ai_log_refusal(p_request, v_model, v_limit, v_cause, v_retry_ms);
  return row(row(false, v_limit, v_cause, v_retry_ms, v_retry_at, null, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
      'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', v_client.id, 'token_id', v_token.id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end
    )::public.google_ai_admission_verdict, p_request, v_worst)::public.google_ai_token_verdict;
end
$function$
;

drop trigger if exists google_ai_attempts_holder on public.google_ai_attempts;
CREATE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN ((new.hold_until IS NOT NULL)) EXECUTE FUNCTION public.google_ai_attempt_holder();

drop trigger if exists google_ai_queue_reply_check on public.google_ai_queue;
CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE OF reply_by ON public.google_ai_queue DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_reply_check();

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_limit_verdict
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester's p_requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif p_paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_limit_verdict;
  elsif p_spread_at is not null then
    return row(p_spread_limit, 'spread', false)::public.google_ai_limit_verdict;
  end if;
  return row('booked', null, false)::public.google_ai_limit_verdict;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_verdict public.google_ai_admission_verdict;
  v_who jsonb;               -- a token's client and token, named in every answer of a token's request
  v_credential public.google_ai_token_verdict;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  v_new_ticket uuid := gen_random_uuid();  -- a ticket taken now (tickets of one instant are ordered by it)
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if (v_credential.refusal).ok is not null then
      return v_credential.refusal;
    end if;
    p_request := v_credential.request;  -- the token's client is the caller from here on
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_verdict := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_verdict.answer is not null then
      v_verdict.answer := v_verdict.answer || coalesce(v_who, '{}');
      return v_verdict;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_request.estimated_tokens
                         or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens
                                            - case when v_limits.booked_output_tokens is not null
                                                   then coalesce(p_request.output_tokens, 0) else 0 end
                         or (p_request.requests > 1 and public.google_ai_requests_over(v_now, v_limits,
                               p_request.requests, p_request.exclude_key_ids) is not null)
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket, p_request.requests);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens,
    p_request.requests);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    v_verdict := public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal);
  else
    v_verdict := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
      v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
      case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  end if;
  if v_who is not null then  -- (a service caller's answer is not encoded again for an empty object)
    v_verdict.answer := v_verdict.answer || v_who;
  end if;
  return v_verdict;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try public.google_ai_admission_verdict;
  v_served boolean := false;  -- v_try is the answer: admitted, queued, or a refusal no other model can change
  v_best jsonb;
  v_refusals public.google_ai_admission_verdict[];   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, cause, retry_after_ms} of each model passed over
  v_refused public.google_ai_request;  -- the request as a passed-over model's refused row names it
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, p_now);
  for i in v_chain.o_first .. cardinality(v_chain.o_models) loop
    if v_chain.o_retired[i] then
      v_try := row(false, 'retired', 'retired', null, null, v_chain.o_models[i], null, null, null,
        jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
          'model', v_chain.o_models[i]))::public.google_ai_admission_verdict;
    else
      begin
        p_request.model := v_chain.o_names[i];
        p_request.output_tokens := p_output_tokens[v_chain.o_answer_of[i]];
        v_try := public.google_ai_admit_at(p_now, p_request);
        if not v_try.ok and v_try.ticket is null and (v_try.limit_hit = any (c_model_limits)
                                                      or public.google_ai_queue_turns(v_try.limit_hit) is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_served := true;
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_served;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_request.queue_ticket is not null then
      delete from public.google_ai_queue q
      where q.ticket_id = p_request.queue_ticket and q.model = v_chain.o_models[i];
    end if;

    v_refusals := v_refusals || v_try;
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.o_models[i], 'limit', v_try.limit_hit,
      'cause', v_try.cause, 'retry_after_ms', v_try.retry_after_ms));
    -- (A model without a key once the request's own exclusions are set aside is no attempt either:
    -- google_ai_refusal_at.)
    continue when v_try.limit_hit = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0;
    -- Its row names the chain's caller (a token's client) and the model the request asked for.
    v_refused := p_request;
    v_refused.model := p_models[1];
    v_refused.caller := coalesce(v_chain.o_caller, p_request.caller, 'token');
    v_refused.client_id := v_chain.o_client_id;
    v_refused.token_id := v_chain.o_token_id;
    perform public.google_ai_log_refusal(v_refused, v_chain.o_models[i], v_try.limit_hit, v_try.cause,
      v_try.retry_after_ms);
  end loop;

  if v_served then
    if v_try.model is distinct from v_chain.o_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if v_try.ok then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = v_try.reservation_id;
      elsif v_try.ticket is not null then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = v_try.ticket;
      end if;
    end if;
    return v_try.answer || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.answer into v_best from unnest(v_refusals) with ordinality r
  order by r.retry_at nulls last, (r.limit_hit = 'retired'), r.ordinality
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, p_class.name, p_request.caller);
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests, waits_for, reply_by)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name),
      p_request.reply_by)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for, reply_by = excluded.reply_by
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
  v_reservation uuid;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests, reply_by, hold_until,
    holder)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests, p_request.reply_by, p_request.hold_until, p_request.holder)
  returning a.reservation_id, jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_reservation, v_answer;
  -- The claim after the attempt row, with the request's holder (google_ai_hold_request).
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return row(false, 'withdrawn', 'shut_down', null, null, p_limits.model, p_limits.successor, null, null,
        jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
          'model', p_limits.model) || v_said)::public.google_ai_admission_verdict;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return row(false, v_limit, p_refusal.cause, public.google_ai_ms_until(v_wait.expected, p_now), v_wait.expected,
      p_limits.model, null, null, coalesce(p_refusal.ticket, p_refusal.new_ticket),
      v_wait.answer || v_said)::public.google_ai_admission_verdict;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    perform public.google_ai_log_refusal(p_request, coalesce(p_limits.model, p_request.model), v_limit,
      p_refusal.cause, v_retry_ms);
  end if;
  return row(false, v_limit, p_refusal.cause, v_retry_ms, v_reopens_at, p_limits.model, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at, 'model', p_limits.model,
      'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said
    )::public.google_ai_admission_verdict;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_token_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_worst numeric;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    return row(row(false, 'token_invalid', 'token_invalid', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid', 'retry_after_ms', null)
      )::public.google_ai_admission_verdict, null, null)::public.google_ai_token_verdict;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  -- The token's client is the caller from here on.
  p_request.caller := 'client:' || v_client.name;
  p_request.client_id := v_client.id;
  p_request.token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  -- (google_ai_token_models' rule, as two tests: a call of it would cost more than the check.)
  if v_limit is null and not (v_model = any (v_token.models) and v_model = any (v_client.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      v_worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return row(null, p_request, v_worst)::public.google_ai_token_verdict;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  perform public.google_ai_log_refusal(p_request, v_model, v_limit, v_cause, v_retry_ms);
  return row(row(false, v_limit, v_cause, v_retry_ms, v_retry_at, null, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
      'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', v_client.id, 'token_id', v_token.id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end
    )::public.google_ai_admission_verdict, p_request, v_worst)::public.google_ai_token_verdict;
end
$function$;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on type public.google_ai_admission_verdict is 'One model''s verdict on a request (admitted, queued or refused: limit, cause, times, model, successor, reservation or ticket) and the answer built for the caller, handed up from step to step of the admission.';
revoke all on function public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request) from public, anon, authenticated, service_role;
comment on column public.google_ai_attempts."holder" is 'The invocation whose statement made this row (its request''s holder), when it named one.';
revoke all on function public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone, OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer, OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_idempotent_answer(p_caller text, p_request_id text, p_now timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_log_refusal(p_request public.google_ai_request, p_model text, p_limit text, p_cause text, p_retry_ms bigint) from public, anon, authenticated, service_role;
comment on column public.google_ai_queue."reply_by" is 'When the caller of the statement that took or renewed the ticket stopped waiting for its answer (its request''s reply_by; google_ai_reply_check rolls back a ticket committed later). Null: none named.';
revoke all on function public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal) from public, anon, authenticated, service_role;
comment on type public.google_ai_request is 'One reservation request as its entry received it, handed whole through fall-back, admit, refuse, record and queue (google_ai_reserve_models_at builds it).';
comment on column public.google_ai_responses."holder" is 'The invocation holding this in-flight claim (its request''s holder); null until its first reservation, or for a claim made without one.';
revoke all on function public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request) from public, anon, authenticated, service_role;
