-- The reservation: one round trip that answers "may this request go to its provider now, on which key?".
-- One verb per layer, outermost first:
--   reserve    the entry: google_ai_reserve_models (models as an array, a caller or a token hash,
--              the holder's deadlines and id), its clock seam google_ai_reserve_models_at, which
--              llm-invoke, the tests and the bench all call;
--   fall back  a chain's models in order until one serves (google_ai_fall_back_at);
--   admit      the queue-aware decision for one request (idempotency, credential, queue turn:
--              google_ai_admit_at), answered by one of two steps: google_ai_refusal_at (wait in
--              line, or refuse with the time to ask again) or google_ai_record_admission (the
--              attempt row and the answer);
--   book       pick a quota group and count the request in its windows (google_ai_book_best_group:
--              50_booking.sql), one group under its counter row's lock (google_ai_book_group:
--              45_group_booking.sql);
--   settle     give back what an ended attempt did not use (30_shares_and_budgets.sql).
-- The claim of a request id and its holder's deadlines (reply_by, hold_until) are 55_claims.sql.
--
-- The functions a request enters through (reserve, admit, and finalize and release in 60_life_cycle.sql)
-- set plan_cache_mode = force_generic_plan for everything they run. Their statements take the clock
-- and the model as parameters; PostgreSQL's default would plan them again on every call (a custom
-- plan for the window's time range looks cheaper than the generic one), which was a quarter of the
-- reservation's CPU. Every statement here finds its rows by key (counter row, model, quota group,
-- ticket), so the generic plan is the one a custom plan would choose; those that read a time range of
-- the log close it on both sides, so the generic plan still walks the range's index (15_request_log.sql).
-- The steps every booking runs under them (admit and fall back, which set only plan_cache_mode and are
-- not security definer: only the entry reaches them; google_ai_queue_place, google_ai_book_best_group and
-- its google_ai_caller_budget_at, google_ai_admission_guard, google_ai_record_admission) set no search_path
-- of their own, as the rules under them do not: they run inside an entry, security definer with an
-- empty search_path, and name everything by schema; a SET clause makes every call save and restore the
-- setting (counted, about 6k instructions a call). google_ai_book_group keeps its own, so a call to it
-- is counted by track_functions turned on within a transaction (02_reservation.test.sql counts them).
set check_function_bodies = off;

-- What a refusal's answer names beside its limit, cause and time: how many tokens a minute allows (too
-- large: TPM, else ITPM, and OTPM as max_output_tokens where the row has it), a withdrawn model's when and
-- successor (if a row says), or a budget's period; for a request of more requests than the model's minute
-- or its day holds (too large: google_ai_requests_over), requests, max_requests and per, with the cause
-- and retry_at that google_ai_refusal_at answers with. p_limits, p_refusal: as google_ai_refusal_at takes
-- them; p_requests, p_exclude_key_ids: the request's.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_figures(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_refusal public.google_ai_refusal, p_requests integer,
    p_exclude_key_ids uuid[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_limit text := p_refusal.limit_hit;
  v_over jsonb;
begin
  -- (A row that follows its provider is too large by the widest window its groups follow.)
  if v_limit = 'too_large' and p_limits.provider_limits = 'follow' then
    p_limits := public.google_ai_followed_widest(p_limits, p_exclude_key_ids);
  end if;
  v_over := case when v_limit = 'too_large' then public.google_ai_requests_over(p_now, p_limits, p_requests,
    p_exclude_key_ids) end;
  return coalesce(v_over, jsonb_build_object('max_tokens',
      case when v_limit = 'too_large' then coalesce(p_limits.tpm, p_limits.itpm) end))
    || case when v_limit = 'too_large' and v_over is null and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when v_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_refusal.period is not null then jsonb_build_object('period', p_refusal.period)
            else '{}' end;
end
$$;

-- refuse: a request no group takes now waits in line when its turn is likely within its wait
-- (google_ai_queue_wait, for a refusal a wait can end: google_ai_queue_turns names them; its answer is
-- the ticket), else it is answered with its limit, its cause and when to ask again, and logged: one
-- refused row per request and attempt, not one per poll (a WAIT caller asking again, wait_ms > 0,
-- updates the row its first refusal wrote during this wait). A ticket it held is given up. Behind a
-- queue, capacity for this caller comes with its turn: the queue's estimate (the likely one, for a
-- lower class), else its turn (the queue's when it was asked, which may be none; else the one its place
-- showed, turn_at) or the group's own time, whichever is later.
-- p_limits is the model's row, limits after the margin (all null when the name is unknown; the row then
-- names the model as asked); p_class the class it asked in (its rank its place's); p_refusal why, and its
-- place (google_ai_queue_place). Every answer names its figures (google_ai_refusal_figures); a request
-- of more requests than the minute or the day holds is refused with their cause and time. The answer is
-- the refusal's verdict (google_ai_admission_verdict).
CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone,
    p_request public.google_ai_request, p_limits public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
    RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
  -- (google_ai_fallback_chain) on this answer, and google_ai_pass_over logs the model it passes over.
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
$$;

-- record the admission: a booked request's attempt row, and the answer from what it holds (the key, its
-- group, the buckets, the class, and the quota the booking leaves when it has one: p_booking,
-- google_ai_book_best_group's answer). The ticket it held (p_ticket) is done with; an idempotent
-- request's id is held (google_ai_hold_request); a token's budgets count the request
-- (google_ai_count_budgets). p_booked_usd: the worst case booked in a budget in money (a token's, its
-- client's or a service caller's; null: none), which the answer names (booked_usd: llm-invoke then sends
-- the answer it booked as the call's cap where the request names none); p_booked_output: the answer a
-- model's token buckets booked (google_ai_schedule_place), settled at the answer. The row carries the
-- request's holder and deadlines (its trigger renews the holder's claim: 55_claims.sql). The answer is
-- the admission's verdict (google_ai_admission_verdict).
CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone,
    p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid,
    p_booked_usd numeric, p_booked_output integer) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting is assigned and never read by design: a perform costs a statement.)
declare
  v_answer jsonb;
  v_reservation uuid;
  v_claims boolean := p_request.idempotent and p_request.request_id is not null;  -- the claim is written here
  v_setting text;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(row(p_request.caller, p_request.client_id,
      p_request.token_id)::public.google_ai_caller, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- A claim written below, after the row, with the row's holder: the row's trigger need not renew it first
  -- (google_ai_attempt_holder: its write would be written over; counted, 84k instructions a reservation).
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'on', true);
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
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'off', true);
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$$;

-- admit: one request for one model (p_request.model), as a service caller (caller; client_id when it
-- acts for a client) or with a scoped token (token_hash: checked and its budgets booked with the quota,
-- all or nothing, by google_ai_token_verdict_at and google_ai_count_budgets; the client's class bounds
-- the request's; a queued refusal books no budget). The answer of a token's request names its client_id
-- and token_id. output_tokens: the answer the request is sent with to this model (its largest, as
-- llm-invoke decided it), which a budget in money books (null: not known, so a budget in money refuses
-- it); a budget's refusal names its period (day, month, or a token's life). Too large, refused before
-- any lock: more than a minute of TPM, or of ITPM for its input (the estimate less its answer where the
-- row books answers in it) or of OTPM for its answer. A model past its row's shutdown date (the day of
-- v_now in UTC) is refused before any lock too, as withdrawn with cause shut_down (google_ai_refusal_at).
-- The answer is the model's verdict (google_ai_admission_verdict), its answer built for the caller.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone,
    p_request public.google_ai_request) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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
                       then 'withdrawn' when v_limits.provider_limits = 'follow'
                       then public.google_ai_followed_too_large(v_now, v_limits, p_request)
                       when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                              is not null then coalesce(p_request.output_tokens, 0) else 0 end
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
    p_request, p_now, v_now);
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
$$;

-- Fallback: the request's models in order, each admitted (google_ai_admit_at) until one serves.
-- p_models: the request's model as the caller named it, then its fallbacks (2 to 4). A service caller's
-- request names its caller; a scoped token's its token_hash instead (checked for each model under the
-- token's lock, as for one model). Fallbacks the token may not use are left out; the first model is
-- always asked, so a token that may not use it is refused model_not_allowed.
--
-- With a queue_ticket, the chain starts at the ticket's model: the models before it could not serve
-- within the wait when the ticket was taken, so the ticket's turn is the request's best chance.
--
-- The answer is google_ai_admit_at's, plus:
--   requested_model  the chain's first model (canonical)
--   fallback_from    each model passed over before the one that answered: {model, limit, retry_after_ms}
-- When every model refuses, the refusal whose capacity comes back first is answered (the first
-- model's when none names a time), with fallback_from listing every model tried. p_output_tokens: the
-- answer each model of p_models is sent with, in its order (google_ai_admit_at). p_chain: the chain's first
-- read (google_ai_fallback_chain of these models, token and no ticket, its first model's links), where the
-- caller read it once for several reservations (google_ai_reserve_many); null: read here.
CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[],
    p_request public.google_ai_request, p_output_tokens integer[], p_chain record DEFAULT NULL::record) RETURNS jsonb
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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
  v_passed text[] := '{}'::text[];   -- the models passed over
  v_chain_at timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());  -- both reads of the chain on one day
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  -- The first model's links; once they are passed over, the whole chain read again, less the models passed
  -- over (a row may have changed between the two reads).
  if p_chain is null then
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at,
      true);
  else
    v_chain := p_chain;
  end if;
  <<reads>>
  for v_read in 1 .. 2 loop
    for i in v_chain.o_first .. cardinality(v_chain.o_models) loop
      continue when v_chain.o_models[i] = any (v_passed);
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
                                                        or public.google_ai_queue_turns(v_try.limit_hit) is not null)
          then
            raise exception using errcode = 'EF001', message = 'model refused: try the next';
          end if;
          v_served := true;
        exception when sqlstate 'EF001' then
          null; -- rolled back: no lock, row or ticket change of this model's try is left
        end;
      end if;
      exit reads when v_served;
      v_passed := v_passed || v_chain.o_models[i];
      v_refusals := v_refusals || v_try;
      v_steps := v_steps || jsonb_build_array(public.google_ai_pass_over(p_request, p_models[1],
        v_chain.o_models[i], v_try, v_chain.o_caller, v_chain.o_client_id, v_chain.o_token_id));
    end loop;
    exit when v_chain.o_complete;
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at);
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
$$;

-- The reservation entry's arguments as one record (google_ai_reserve_models' own, less p_), which its
-- clock seam google_ai_reserve_models_at takes whole.
CREATE TYPE public.google_ai_reservation AS (
    models text[],
    estimated_tokens integer,
    caller text,
    token_hash text,
    request_id text,
    exclude_key_ids uuid[],
    attempt integer,
    wait_ms integer,
    metadata jsonb,
    idempotent boolean,
    priority text,
    queue_ticket uuid,
    wait_left_ms integer,
    reply_by timestamp with time zone,
    hold_until timestamp with time zone,
    holder uuid,
    output_tokens integer[],
    requests integer
);

-- The one reservation entry: the models as an array (a single model is an array of one, a chain
-- its models in order) and either a caller (a service caller's label) or a token hash. One model
-- is admitted by google_ai_admit_at, a chain by google_ai_fall_back_at; the answer is theirs,
-- unchanged (one model past its shutdown date with a successor: admit's verdict says so, and the model
-- is asked again as a chain, which takes its successor). The holder's deadlines and identity
-- (reply_by, hold_until, holder: llm-invoke's store/holder.ts) are fields of the request, which every
-- attempt row and queue ticket of the statement carries (none without a reply_by; hold_until never
-- before reply_by). p_output_tokens: the answer each model is sent with (the request's largest, decided
-- by llm-invoke), in p_models' order, which a budget in money books; null: not known (a budget in money
-- refuses). The clock is injected (p_now; null: the transaction's own clock): the test seam. Owner only.
-- p_call: the entry's arguments as one record (google_ai_reservation; a null field is the entry's default).
-- p_chain: a chain's first read, for google_ai_fall_back_at (null: read there).
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone,
    p_call public.google_ai_reservation, p_chain record DEFAULT NULL::record) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens, p_chain);
  end if;
  v_verdict := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if v_verdict.successor is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_verdict.answer;
end
$$;

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock. (PL/pgSQL, not
-- SQL: a SQL function with SET clauses is planned again on every call; this keeps its plan.)
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer,
    p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0,
    p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text,
    p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer,
    p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[],
    p_requests integer DEFAULT 1) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_reserve_models_at(null, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket,
    p_wait_left_ms, p_reply_by, p_hold_until, p_holder, p_output_tokens, p_requests)::public.google_ai_reservation);
end
$$;
