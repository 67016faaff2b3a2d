-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the quota shows the token buckets, a pool rests together, too large for ITPM/OTPM refused
--   at once, the queue's turn uses the bucket
set check_function_bodies = off;

drop view if exists "public"."google_ai_usage_now";

drop view if exists "public"."google_ai_usage_now";

drop function if exists "public"."google_ai_group_room"(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone);

CREATE OR REPLACE FUNCTION public.google_ai_bucket_room(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  if p_limit is null then
    return;
  end if;
  full_at := greatest(p_until, p_now);
  tokens_left := greatest(0, floor(greatest(floor(p_limit * coalesce(p_share, 1)), 1)
    - extract(epoch from full_at - p_now) * p_limit / extract(epoch from p_window)));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_quota record;
  v_tokens record;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits.rpm := public.google_ai_effective_limit(v_limits.rpm, v_limits.safety_margin);
  v_limits.tpm := public.google_ai_effective_limit(v_limits.tpm, v_limits.safety_margin);
  v_limits.rpd := public.google_ai_effective_limit(v_limits.rpd, v_limits.safety_margin);
  v_limits.itpm := public.google_ai_effective_limit(v_limits.itpm, v_limits.safety_margin);
  v_limits.otpm := public.google_ai_effective_limit(v_limits.otpm, v_limits.safety_margin);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  v_ring := public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0));
  requests_used := coalesce(v_ring.sum_requests, 0);
  tokens_used := coalesce(v_ring.sum_tokens, 0);
  select * into v_quota from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm,
    v_limits.rpd, v_now);
  requests_left := v_quota.requests_left;
  tokens_left := v_quota.tokens_left;
  day_left := v_quota.day_left;
  window_frees_at := least(v_quota.requests_reset_at, v_quota.tokens_reset_at);
  ready_at := v_quota.ready_at;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  v_tokens := public.google_ai_group_token_room(p_quota_group, v_limits, v_now);
  input_tokens_left := v_tokens.input_left;
  output_tokens_left := v_tokens.output_left;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_token_room(p_quota_group text, p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint, OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval;
  v_row public.google_ai_usage_counters;
  v_rest timestamptz;
  v_in record;
  v_out record;
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  v_in := public.google_ai_bucket_room(v_row.input_until, p_now, v_window, p_limits.itpm, p_limits.bucket_share);
  v_out := public.google_ai_bucket_room(v_row.output_until, p_now, v_window, p_limits.otpm, p_limits.bucket_share);
  input_left := case when v_rest is null or v_in.tokens_left is null then v_in.tokens_left else 0 end;
  input_full_at := case when p_limits.itpm is not null then greatest(v_in.full_at, v_rest) end;
  output_left := case when v_rest is null or v_out.tokens_left is null then v_out.tokens_left else 0 end;
  output_full_at := case when p_limits.otpm is not null then greatest(v_out.full_at, v_rest) end;
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

CREATE OR REPLACE FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l
        where l.is_active and l.limit_pool = (select p.limit_pool from public.google_ai_model_limits p
                                              where p.model = p_model)
        union
        select l.model from public.google_ai_model_limits l
        where p_cause = any (public.google_ai_quota_causes(true)) and l.is_active
          and exists (select 1 from public.google_ai_api_keys k
                      where public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
                        and k.serves_provider = l.provider
                        and (k.models is null or l.model = any (k.models)))) m
  order by m.model
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_ring record;
  v_row public.google_ai_usage_counters;
  v_zone text := public.google_ai_day_zone(p_model);  -- the provider's day
  v_day date := public.google_ai_day_in(p_now, v_zone);
  v_midnight timestamptz := public.google_ai_midnight_after_in(p_now, v_zone);
  v_day_start timestamptz;
  v_counts integer[];
  v_used integer;
  v_next integer;
  v_prev integer;
  v_near_end boolean;
  v_near_start boolean;
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute, counted as google_ai_book_group counts it: the ring moved on to p_now; the next to
  -- leave the window are its oldest seconds.
  if p_rpm is not null or p_tpm is not null then
    v_ring := public.google_ai_ring_at(p_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, coalesce(v_row.window_tokens, 0));
    if p_rpm is not null then
      requests_left := greatest(0, p_rpm - v_ring.sum_requests);
      requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window), p_now);
    end if;
    if p_tpm is not null then
      tokens_left := greatest(0, p_tpm - v_ring.sum_tokens);
      tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window, true),
        p_now);
    end if;
  end if;

  -- The day, read as google_ai_book_group reads it (google_ai_day_counts): within the guard of a
  -- midnight the other day's count binds too.
  if p_rpd is not null then
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_used := v_counts[1]; v_next := v_counts[2]; v_prev := v_counts[3];
    v_day_start := public.google_ai_day_start_in(v_day, v_zone);
    v_near_end := p_now >= v_midnight - v_day_guard;
    v_near_start := p_now < v_day_start + v_day_guard;
    day_left := greatest(0, p_rpd - greatest(coalesce(v_used, 0),
                                             case when v_near_end then coalesce(v_next, 0) else 0 end,
                                             case when v_near_start then coalesce(v_prev, 0) else 0 end));
    day_reset_at := case when v_near_start and coalesce(v_prev, 0) > coalesce(v_used, 0)
                         then v_day_start + v_day_guard
                         else v_midnight + v_day_guard end;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_midnight then
      day_left := 0; -- the provider's per-day refusal: the cooldown lasts until its midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_limits record;
  v_sum record;
  v_bucket_limits jsonb := '{}';
  v_bucket_minute jsonb := '{}';
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                   v_limits.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)
), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object(
    'model', v_limits.model,
    'limits', jsonb_build_object('rpm', v_limits.rpm, 'tpm', v_limits.tpm, 'rpd', v_limits.rpd)
              || v_bucket_limits,
    'quota_groups', v_sum.groups,
    'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
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

create or replace view "public"."google_ai_usage_now" as  WITH clock AS (
         SELECT now() AS at
        ), serving AS (
         SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
            l.model,
            (count(*))::integer AS active_keys,
            array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
           FROM (public.google_ai_api_keys k
             JOIN public.google_ai_model_limits l ON ((l.is_active AND (k.serves_provider = l.provider) AND ((k.models IS NULL) OR (l.model = ANY (k.models))))))
          WHERE k.is_active
          GROUP BY (public.google_ai_quota_group(k.project_id, k.id)), l.model
        ), pairs AS (
         SELECT s.quota_group,
            s.model
           FROM serving s
        UNION
         SELECT c.quota_group,
            c.model
           FROM public.google_ai_usage_counters c
          WHERE (c.quota_group IS NOT NULL)
        ), usage AS (
         SELECT p.quota_group,
            p.model,
            clock.at,
            z.zone,
            z.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.day_bucket = z.day) THEN c.rpd_used
                    ELSE 0
                END AS rpd_used,
            public.google_ai_effective_limit(l.rpm, l.safety_margin) AS rpm_limit,
            public.google_ai_effective_limit(l.tpm, l.safety_margin) AS tpm_limit,
            public.google_ai_effective_limit(l.rpd, l.safety_margin) AS rpd_limit,
            cd.cooldown_until,
            cd.reason AS cooldown_reason
           FROM ((((((pairs p
             CROSS JOIN clock)
             CROSS JOIN LATERAL ( SELECT y.zone,
                    public.google_ai_day_in(clock.at, y.zone) AS day
                   FROM ( SELECT public.google_ai_day_zone(p.model) AS zone) y) z)
             LEFT JOIN serving s ON (((s.quota_group = p.quota_group) AND (s.model = p.model))))
             LEFT JOIN public.google_ai_usage_counters c ON (((c.quota_group = p.quota_group) AND (c.model = p.model))))
             LEFT JOIN public.google_ai_model_limits l ON ((l.model = p.model)))
             LEFT JOIN public.google_ai_cooldowns cd ON (((cd.quota_group = p.quota_group) AND (cd.model = p.model) AND (cd.cooldown_until > clock.at))))
        )
 SELECT u.quota_group,
    u.model,
    u.active_keys,
    u.key_aliases,
    (u.at - '00:01:00'::interval) AS minute_window,
    r.requests_used AS rpm_used,
    u.rpm_limit,
    r.requests_left AS rpm_left,
    (r.tokens_used)::integer AS tpm_used,
    u.tpm_limit,
    (r.tokens_left)::integer AS tpm_left,
    u.day AS provider_day,
    u.rpd_used,
    u.rpd_limit,
    r.day_left AS rpd_left,
    u.cooldown_until,
    u.cooldown_reason,
        CASE
            WHEN (u.active_keys = 0) THEN 'no_active_key'::text
            WHEN (u.cooldown_until IS NOT NULL) THEN 'cooldown'::text
            WHEN (r.day_left = 0) THEN 'rpd'::text
            WHEN (r.requests_left = 0) THEN 'rpm'::text
            WHEN (r.tokens_left = 0) THEN 'tpm'::text
            WHEN ((r.input_tokens_left = 0) OR (r.output_tokens_left = 0)) THEN 'tpm'::text
            ELSE 'open'::text
        END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_day_start_in((u.day + 1), u.zone) AS day_resets_at,
    r.input_tokens_left AS itpm_left,
    r.output_tokens_left AS otpm_left
   FROM (usage u
     CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left, tokens_left, day_left, window_frees_at, ready_at, input_tokens_left, output_tokens_left));

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_bucket_room(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on function public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) is 'Finalize''s cooldown: one model and the active rows of its pool (limit_pool), or for a spend cap or money (google_ai_quota_causes(true)) every active model the quota group''s keys serve.';
revoke all on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint) to service_role;
revoke all on function public.google_ai_group_token_room(p_quota_group text, p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint, OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_usage_now from public, anon, authenticated, service_role;
grant select on table public.google_ai_usage_now to service_role;
alter view public.google_ai_usage_now set (security_invoker='true');
comment on view public.google_ai_usage_now is 'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the sliding minute window (the last minute, minute_window on), the requests of this day of the provider''s (provider_day, in its row''s day_zone; day_resets_at its next midnight), against the limits after the safety margin. The *_left figures are what the next request could book (0 while a cooldown rests the group; a share kept for another class or caller, google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; itpm_left and otpm_left what the token buckets of a row that counts input and output apart hold (null: it does not); state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';
