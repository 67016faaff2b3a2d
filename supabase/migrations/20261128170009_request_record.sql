-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the kernel passes the request whole: one composite google_ai_request from the entry
--   through fall-back, admit, a token's verdict, refuse, record and queue; a refusal's facts and place as one
--   google_ai_refusal; admit and fall back are reached only through the reservation entry: not security
--   definer, no search_path of their own (the entry's holds), plan_cache_mode kept
set check_function_bodies = off;

drop function if exists "public"."google_ai_admit_at"(p_now timestamp with time zone, p_model text, p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_client_id uuid, p_token_id uuid, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_token_hash text, p_output_tokens integer);

drop function if exists "public"."google_ai_fall_back_at"(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_output_tokens integer[]);

drop function if exists "public"."google_ai_queue_wait"(p_now timestamp with time zone, p_model text, p_requested_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_caller text, p_client_id uuid, p_token_id uuid, p_request_id text, p_tokens integer, p_class text, p_rank smallint, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_new_ticket uuid, p_limit text, p_cause text, p_booking_tried boolean, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone);

drop function if exists "public"."google_ai_record_admission"(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric, p_booked_output integer);

drop function if exists "public"."google_ai_refusal_at"(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_limits public.google_ai_model_limits, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid, p_period text);

drop function if exists "public"."google_ai_token_verdict_at"(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_output integer, p_priority text, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_refusal"') is null then
    create type "public"."google_ai_refusal" as ("limit_hit" text, "cause" text, "reopens_at" timestamp with time zone, "recheck_at" timestamp with time zone, "booking_tried" boolean, "ticket" uuid, "turn" bigint, "since" timestamp with time zone, "turn_at" timestamp with time zone, "new_ticket" uuid, "period" text);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_request"') is null then
    create type "public"."google_ai_request" as ("model" text, "caller" text, "client_id" uuid, "token_id" uuid, "token_hash" text, "request_id" text, "attempt" integer, "estimated_tokens" integer, "output_tokens" integer, "wait_ms" integer, "wait_left_ms" integer, "metadata" jsonb, "priority" text, "exclude_key_ids" uuid[], "queue_ticket" uuid, "idempotent" boolean);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}'::jsonb;       -- a token's client and token, named in every answer
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
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_request.caller := v_credential.caller;
    p_request.client_id := v_credential.client_id;
    p_request.token_id := v_credential.token_id;
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
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
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal) || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
    v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_request.token_hash is null then v_answer else v_answer || v_who end;
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
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]'::jsonb;   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, p_now);
  for i in v_chain.first .. cardinality(v_chain.models) loop
    if v_chain.retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_chain.models[i]);
    else
      begin
        p_request.model := v_chain.names[i];
        p_request.output_tokens := p_output_tokens[v_chain.answer_of[i]];
        v_try := public.google_ai_admit_at(p_now, p_request);
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
    if p_request.queue_ticket is not null then
      delete from public.google_ai_queue q
      where q.ticket_id = p_request.queue_ticket and q.model = v_chain.models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    -- (A model without a key once the request's own exclusions are set aside is no attempt either:
    -- google_ai_refusal_at.)
    continue when v_try ->> 'limit' = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0;
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request.request_id, coalesce(v_chain.caller, p_request.caller, 'token'), v_chain.client_id,
      v_chain.token_id, v_chain.models[i], p_models[1], p_request.attempt, p_request.estimated_tokens,
      v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint, p_request.wait_ms,
      coalesce(p_request.metadata, '{}'));
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
  select count(*), min(q.lease_until) filter (where q.expected_at <= p_now) into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits.model, p_limits.rpm, p_limits.rpd, p_request.exclude_key_ids, p_now,
    v_ahead + 1, p_class.rank, p_class.name, p_request.caller) t;
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
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
    returning * into v_ticket;
    answer := jsonb_build_object(
      'ok', false,
      'limit', p_refusal.limit_hit,
      'cause', p_refusal.cause,
      'retry_after_ms', public.google_ai_ms_until(expected, p_now),
      'retry_at', expected,
      'model', p_limits.model,
      'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                  'expected_at', expected, 'priority', p_class.name));
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking record, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt), p_request.estimated_tokens, p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
  into v_answer;
  if p_booking.quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := jsonb_build_object('max_tokens', case when v_limit = 'too_large'
                                                       then coalesce(p_limits.tpm, p_limits.itpm) end)
    || case when v_limit = 'too_large' and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when v_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_refusal.period is not null then jsonb_build_object('period', p_refusal.period)
            else '{}' end;
begin
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
        'model', p_limits.model) || v_said;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
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
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request.request_id, p_request.caller, p_request.client_id, p_request.token_id,
      coalesce(p_limits.model, p_request.model), p_request.model, p_request.attempt, p_request.estimated_tokens,
      v_limit, p_refusal.cause, v_retry_ms, p_request.wait_ms, coalesce(p_request.metadata, '{}'));
  end if;
  return jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
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
  v_count_request integer := public.google_ai_request_counts(p_request.attempt);
  v_day_over boolean;
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
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
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  select u.over into v_day_over
  from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day,
    v_count_request, p_request.estimated_tokens, v_client.daily_max_requests, v_client.daily_max_tokens) u;
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_limit := 'token_revoked';
  elsif v_token.expires_at <= p_now then
    v_limit := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null
         and v_token.tokens_used + p_request.estimated_tokens > v_token.max_tokens) then
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

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_reply_by is assigned and never read by design, set_config's answer taken by an
-- assignment because a perform costs more, as said below; its other extra warnings are none.)
declare
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_reply_by text;           -- the setting as set
  v_request public.google_ai_request;
  v_answer jsonb;
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
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_queue_reply_check). (Assigned,
  -- not performed: a perform is a statement of its own, counted about 6k instructions more.)
  v_reply_by := pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  v_request := row(p_models[1], p_caller, null, null, p_token_hash, p_request_id, p_attempt, p_estimated_tokens,
    p_output_tokens[1], p_wait_ms, p_wait_left_ms, v_metadata, p_priority, p_exclude_key_ids, p_queue_ticket,
    p_idempotent);
  if cardinality(p_models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_models, v_request, p_output_tokens);
  end if;
  v_answer := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if (v_answer ->> 'cause') = 'shut_down' and (v_answer ->> 'successor') is not null then
    return public.google_ai_fall_back_at(p_now, p_models, v_request, p_output_tokens);
  end if;
  return v_answer;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking record, p_ticket uuid, p_booked_usd numeric, p_booked_output integer) from public, anon, authenticated, service_role;
comment on type public.google_ai_refusal is 'Why a request was not booked (limit, cause, the booking''s times) and its place in the queue, handed whole to google_ai_refusal_at and google_ai_queue_wait.';
revoke all on function public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal) from public, anon, authenticated, service_role;
comment on type public.google_ai_request is 'One reservation request as its entry received it, handed whole through fall-back, admit, refuse, record and queue (google_ai_reserve_models_at builds it).';
revoke all on function public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric) from public, anon, authenticated, service_role;
