-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: limits as data: ITPM/OTPM token buckets, bucket_share, limit pools
set check_function_bodies = off;

drop function if exists "public"."google_ai_book_group"(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb);

drop function if exists "public"."google_ai_booking_rules"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date, p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean, p_near_start boolean, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb);

drop function if exists "public"."google_ai_record_admission"(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric);

alter table "public"."google_ai_attempts" add column if not exists "booked_output_tokens" integer;

alter table "public"."google_ai_model_limits" add column if not exists "bucket_share" numeric(4,3);

alter table "public"."google_ai_model_limits" add column if not exists "itpm" integer;

alter table "public"."google_ai_model_limits" add column if not exists "itpm_counts_cache_reads" boolean not null default false;

alter table "public"."google_ai_model_limits" add column if not exists "limit_pool" text;

alter table "public"."google_ai_model_limits" add column if not exists "otpm" integer;

alter table "public"."google_ai_usage_counters" add column if not exists "input_until" timestamp with time zone;

alter table "public"."google_ai_usage_counters" add column if not exists "output_until" timestamp with time zone;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_bucket_share_check') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_bucket_share_check" CHECK (((bucket_share > (0)::numeric) AND (bucket_share <= (1)::numeric))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_bucket_share_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_itpm_check') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_itpm_check" CHECK ((itpm >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_itpm_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_otpm_check') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_otpm_check" CHECK ((otpm >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_otpm_check";

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_output integer DEFAULT NULL::integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb)
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
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_pacific_start(v_day) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_now, v_window, v_day, p_tokens,
      v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end, v_near_start, p_output);
    select v_rules.outcome, v_rules.cause, greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket), v_day
      into outcome, cause, minute_bucket, day_bucket;
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
      spread_until    = public.google_ai_spread_next(c.spread_until, v_now, v_rules.spread_step),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, 1, null, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
    -- (The key kept taken out when the shares keep nothing; minus an empty array is the object as it is.)
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

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date, p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean, p_near_start boolean, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_class text := p_class.name;
  v_caller text := p_caller.name;
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}';
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[];
  v_pace_used integer[];
  v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}';   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict record;
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = v_class, false) as for_class,
           coalesce(s.priority_class = v_class, false) or coalesce(s.caller = v_caller, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_now, p_window, v_share.ring_low, v_share.ring,
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

  held_rpd := v_held[1];
  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_now, p_day, p_model.rpd, v_reserved_rpd, v_pace_burst, v_pace_kept,
      v_pace_used, v_pace_next);
  end if;
  v_step := public.google_ai_schedule_place(p_model, p_class.rank, p_counter.spread_until, p_counter.input_until,
    p_counter.output_until, p_now, p_window, p_tokens, p_output, v_in_share);
  spread_step := v_step.step;
  spread_at := v_step.place;
  input_until := v_step.input_until;
  output_until := v_step.output_until;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_requests, p_window_tokens, p_counts,
    p_near_end, p_near_start, v_held_rpm, v_held, paced_until, spread_at, v_step.limit_name);
  outcome := v_verdict.outcome;
  cause := v_verdict.cause;
  window_full := v_verdict.window_full;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_bucket_give(p_until timestamp with time zone, p_window interval, p_limit integer, p_back integer)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  if p_limit is null or coalesce(p_back, 0) <= 0 then
    return p_until;
  end if;
  return p_until - floor(extract(epoch from p_window) * 1000000 * p_back / p_limit) * interval '1 microsecond';
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_bucket_take(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, p_cost integer, OUT until timestamp with time zone, OUT opens_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_token_us numeric := extract(epoch from p_window) * 1000000 / p_limit;
  v_holds numeric := greatest(floor(p_limit * coalesce(p_share, 1)), 1, p_cost);
begin
  until := p_until;
  if p_limit is null then
    return;
  end if;
  until := greatest(p_until, p_now) + ceil(greatest(p_cost, 0) * v_token_us) * interval '1 microsecond';
  if until - ceil(v_holds * v_token_us) * interval '1 microsecond' > p_now then
    opens_at := until - ceil(v_holds * v_token_us) * interval '1 microsecond';
    until := p_until;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_buckets_settled(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_output integer := p_att.booked_output_tokens;
  v_input integer;
  v_used_input integer;
  v_used_output integer := v_output;
begin
  select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
  v_input := p_att.estimated_tokens - case when v_model.booked_output_tokens is not null then v_output else 0 end;
  v_used_input := v_input;
  if p_released then
    select 0, 0 into v_used_input, v_used_output;
  elsif p_att.input_tokens is not null then
    v_used_input := p_att.input_tokens
      - case when v_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end;
    v_used_output := coalesce(p_att.output_tokens, 0);
  elsif p_tokens < p_att.estimated_tokens then
    v_used_output := 0;
  end if;
  -- (The limits after the margin, as the booking took them: google_ai_request_limits.)
  input_until := public.google_ai_bucket_give(p_input_until, p_window,
    public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin), v_input - v_used_input);
  output_until := public.google_ai_bucket_give(p_output_until, p_window,
    public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin), v_output - v_used_output);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric, p_booked_output integer)
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
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens)
  values (gen_random_uuid(), 'reserved', p_request_id, p_caller, p_client_id, p_token_id, p_model,
    p_requested_model, p_attempt, p_key_id, p_key_alias, p_quota_group, p_minute_bucket, p_day_bucket,
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'), p_class, p_admitted_at, p_booked_usd, p_booked_output)
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

CREATE OR REPLACE FUNCTION public.google_ai_schedule_place(p_model public.google_ai_model_limits, p_rank smallint, p_spread_until timestamp with time zone, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_tokens integer, p_output integer, p_in_share boolean, OUT step interval, OUT place timestamp with time zone, OUT limit_name text, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_step record;
  v_in record;
  v_out record;
begin
  v_step := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, p_window, p_model.rpm, p_model.tpm,
    p_tokens);
  step := v_step.step;
  limit_name := v_step.limit_name;
  if v_step.step is not null and p_spread_until - v_step.tolerance > p_now
     and (p_model.bucket_share is not null
          or (not p_in_share and public.google_ai_spread_holds(p_model.model, p_rank, p_now))) then
    place := p_spread_until - v_step.tolerance;
  end if;
  if p_model.itpm is null and p_model.otpm is null then
    return;
  end if;
  v_in := public.google_ai_bucket_take(p_input_until, p_now, p_window, p_model.itpm, p_model.bucket_share,
    p_tokens - case when p_model.booked_output_tokens is not null then coalesce(p_output, 0) else 0 end);
  v_out := public.google_ai_bucket_take(p_output_until, p_now, p_window, p_model.otpm, p_model.bucket_share,
    coalesce(p_output, 0));
  if greatest(v_in.opens_at, v_out.opens_at) > coalesce(place, '-infinity') then
    place := greatest(v_in.opens_at, v_out.opens_at);
    limit_name := 'tpm';
  end if;
  -- (Written only when the request is booked: a refused booking writes nothing.)
  input_until := v_in.until;
  output_until := v_out.until;
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
    coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_output_tokens, 0) end);
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
        v_candidate.groups > 1 and not v_candidate.waiting, p_output);
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

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_outcome text, p_window_full boolean, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_midnight timestamp with time zone, p_day_guard interval, p_near_end boolean, p_today_fits boolean, p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  if p_outcome = 'rpd' then
    reopens_at := case when not p_today_fits then p_midnight
                       when p_near_end then public.google_ai_pacific_midnight_after(p_midnight)
                       else public.google_ai_pacific_start(public.google_ai_pacific_day(p_now)) end + p_day_guard;
    return;
  end if;
  if p_window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, coalesce(p_model.limit_pool, p_model.model),
      p_now, p_window, p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name);
    if p_outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                     where a.quota_group = p_quota_group and a.model = p_model.model
                                       and a.status = 'reserved' and a.admitted_at > p_now - p_window
                                       and a.admitted_at < 'infinity') then
      recheck_at := p_now + p_recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_outcome = 'pace' then
    reopens_at := greatest(p_paced_until, reopens_at);
    recheck_at := null;
  elsif p_spread_at is not null then
    reopens_at := greatest(p_spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_row public.google_ai_model_limits;
begin
  select m.* into v_row from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  if not found then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
  v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
  v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
  if v_row.itpm is not null or v_row.otpm is not null then
    v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
    v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
  end if;
  v_row.safety_margin := 0;
  return v_row;
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
  -- Counted for the other day too when admitted within the day guard of a midnight.
  v_near_end boolean := p_att.admitted_at >= public.google_ai_pacific_midnight_after(p_att.admitted_at) - v_day_guard;
  v_near_start boolean := p_att.admitted_at
    < public.google_ai_pacific_start(public.google_ai_pacific_day(p_att.admitted_at)) + v_day_guard;
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
                  null, v_window, v_requests, -1, p_att.admitted_at, p_att.day_bucket, v_near_end, v_near_start)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_attempts."booked_output_tokens" is 'Of estimated_tokens, the answer an admission took from the model''s otpm bucket (its max_tokens), the rest from its itpm bucket (google_ai_token_buckets); settled at the answer (google_ai_settle_admission). Null: the model has no such bucket.';
revoke all on function public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_output integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date, p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean, p_near_start boolean, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_bucket_give(p_until timestamp with time zone, p_window interval, p_limit integer, p_back integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_bucket_take(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, p_cost integer, OUT until timestamp with time zone, OUT opens_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_buckets_settled(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_model_limits."bucket_share" is 'The limits'' shape. Null: RPM is a sliding minute only (Google, OpenAI), and itpm/otpm buckets hold a minute''s worth. Set: every limit is also a bucket holding this share of its minute''s limit, refilled continuously (Anthropic, whose capacity is not published: lower it when its 429s show a burst the minute allowed): RPM through the schedule of spread_until (then always kept, spread_burst not read), itpm and otpm through theirs.';
comment on column public.google_ai_model_limits."itpm" is 'Input tokens per minute per quota group, apart from output (Anthropic''s ITPM; null: none): a bucket of them (google_ai_bucket_take) that a request''s input is taken from on admission and settled at the answer''s input (cache reads left out unless itpm_counts_cache_reads).';
comment on column public.google_ai_model_limits."itpm_counts_cache_reads" is 'True: cache reads count toward itpm (Anthropic''s older models); false: they do not (its current ones).';
comment on column public.google_ai_model_limits."limit_pool" is 'Rows that name one pool share one set of counts per quota group (one counter row, keyed by the pool''s name): Anthropic''s limits are a family''s (the Sonnet 4.x versions draw on one pool). Each request is held to its own row''s limits against the pool''s counts, so give the pool''s rows the same limits. Null: the model''s own.';
comment on column public.google_ai_model_limits."otpm" is 'Output tokens per minute per quota group (Anthropic''s OTPM; null: none): a bucket that a request''s answer (its max_tokens, or booked_output_tokens) is taken from on admission, the unused part given back at the answer.';
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean, p_booked_usd numeric, p_booked_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_schedule_place(p_model public.google_ai_model_limits, p_rank smallint, p_spread_until timestamp with time zone, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_tokens integer, p_output integer, p_in_share boolean, OUT step interval, OUT place timestamp with time zone, OUT limit_name text, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_usage_counters."input_until" is 'The itpm bucket (google_ai_model_limits.itpm): when it is full again (google_ai_bucket_take). Null: full.';
comment on column public.google_ai_usage_counters."output_until" is 'The otpm bucket (google_ai_model_limits.otpm): when it is full again (google_ai_bucket_take). Null: full.';
