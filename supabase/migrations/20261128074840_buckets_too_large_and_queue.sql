-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a request whose input exceeds the model's ITPM or whose answer exceeds its OTPM is refused
--   too_large at once, the refusal naming max_output_tokens; the queue's estimate for a bucket-shaped model
--   counts on its request bucket
set check_function_bodies = off;

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
                       then 'withdrawn' when v_limits.tpm < p_estimated_tokens or v_limits.otpm < p_output_tokens
                         or v_limits.itpm < p_estimated_tokens - case when v_limits.booked_output_tokens is not null
                                                                  then coalesce(p_output_tokens, 0) else 0 end
                       then 'too_large' end;

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
    coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_output_tokens, 0) end);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_token_hash is null then v_answer else v_answer || v_who end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_spread record;
  v_bucket numeric;
  v_burst integer;
  v_spaced boolean;
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}';
  v_likely timestamptz[] := '{}';
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  -- The schedule as google_ai_schedule_place keeps it: a request bucket (bucket_share) for every class.
  select l.bucket_share, l.spread_burst into v_bucket, v_burst from public.google_ai_model_limits l
  where l.model = p_model;
  v_spread := public.google_ai_spread_step(case when v_bucket is null then v_burst
    else greatest(1, floor(p_rpm * v_bucket))::integer end, v_window, p_rpm, null, 0);
  v_spaced := v_spread.step is not null and (v_bucket is not null or p_rank is null
              or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank));
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model, u.share_use, p_now, v_window, p_class, p_caller) as held
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    -- The window's admissions leave with their seconds (google_ai_ring_at).
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window);
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave.
    v_room := p_rpm - v_group.held;
    kept_bound := kept_bound or (v_count < p_rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_spaced and v_openings[1] <= p_now and v_group.spread_until - v_spread.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_spaced then v_spread.step end, v_spread.tolerance);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now).
  -- None when the shares this waiter does not own keep every group's window from it: the booking
  -- names when, if ever, one has room for it.
  turn_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_slots, p_slots, p_now) end;
  likely_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_likely, p_slots, p_now) end;
end
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
  v_said jsonb := jsonb_build_object('max_tokens', case when p_limit = 'too_large'
                                                       then coalesce(p_limits.tpm, p_limits.itpm) end)
    || case when p_limit = 'too_large' and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when p_limit = 'withdrawn'
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
