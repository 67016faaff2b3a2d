-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: one step gives a counter row as of an instant (google_ai_counter_at: day, counts,
--   midnight, near-end, near-start, ring) for booking, the quota and settling; the rules, the refusal's
--   times, the booked quota and the shares' use take it whole
set check_function_bodies = off;

drop function if exists "public"."google_ai_booked_quota"(p_model text, p_quota_group text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, p_requests integer, p_tokens bigint, p_ring_low bigint, p_ring integer[], p_window interval, p_day integer[], p_near_end boolean, p_near_start boolean, p_today date, p_midnight timestamp with time zone, p_day_guard interval, p_kept jsonb);

drop function if exists "public"."google_ai_booking_outcome"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_requests integer, p_tokens bigint, p_day integer[], p_near_end boolean, p_near_start boolean, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, OUT outcome text, OUT cause text, OUT window_full boolean);

drop function if exists "public"."google_ai_booking_rules"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date, p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean, p_near_start boolean, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone);

drop function if exists "public"."google_ai_refusal_times"(p_outcome text, p_window_full boolean, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_midnight timestamp with time zone, p_day_guard interval, p_near_end boolean, p_today_fits boolean, p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone);

drop function if exists "public"."google_ai_share_use_counted"(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_window_requests integer, p_day_requests integer, p_admitted_at timestamp with time zone, p_day date, p_near_end boolean, p_near_start boolean);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_counter_at"') is null then
    create type "public"."google_ai_counter_at" as ("at" timestamp with time zone, "settled" timestamp with time zone, "minute" interval, "day_guard" interval, "day" date, "counts" integer[], "midnight" timestamp with time zone, "day_start" timestamp with time zone, "near_end" boolean, "near_start" boolean, "ring_low" bigint, "ring" integer[], "sum_requests" integer, "sum_tokens" bigint);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
  select jsonb_build_object(
    'model', p_model.model,
    'quota_group', p_quota_group,
    'rpm', p_model.rpm,
    'requests_left', case when p_model.rpm is not null
                          then greatest(0, p_model.rpm operator(pg_catalog.-) p_at.sum_requests) end,
    'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
    'tpm', p_model.tpm,
    'tokens_left', case when p_model.tpm is not null
                        then greatest(0, p_model.tpm operator(pg_catalog.-) p_at.sum_tokens) end,
    'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
    'rpd', p_model.rpd,
    'day_left', case when p_model.rpd is not null
                     then greatest(0, p_model.rpd operator(pg_catalog.-) (greatest(p_at.counts[1],
                                        case when p_at.near_end then p_at.counts[2] end,
                                        case when p_at.near_start then p_at.counts[3] end)
                                       operator(pg_catalog.+) 1)) end,
    'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
      case when p_at.near_start and p_at.counts[3] operator(pg_catalog.>) p_at.counts[1] then p_at.day_start
           else p_at.midnight end operator(pg_catalog.+) p_at.day_guard, p_at.at) end,
    'kept', p_kept)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, OUT outcome text, OUT cause text, OUT window_full boolean)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + 1 > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + 1 > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + 1 > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + 1 > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + 1 > p_model.rpd) or (p_at.near_start and p_at.counts[3] + 1 > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  window_full := v_rpm_full or v_tpm_full;
  if v_day_full then
    outcome := 'rpd';
    cause := case when v_day_spent then 'day_exhausted' else 'share_kept' end;
  elsif p_paced_until is not null then
    outcome := 'pace';
    cause := 'pace';
  elsif window_full then
    outcome := case when v_rpm_full then 'rpm' else 'tpm' end;
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    cause := case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
                  else 'share_kept' end;
  elsif p_spread_at is not null then
    outcome := p_spread_limit;
    cause := 'spread';
  else
    outcome := 'booked';
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
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
  v_held bigint[] := '{0,0,0}'::bigint[];
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[]; v_pace_used integer[]; v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict record;
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

  held_rpd := v_held[1];
  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_at.at, p_at.day, p_model.rpd, v_reserved_rpd, v_pace_burst,
      v_pace_kept, v_pace_used, v_pace_next, public.google_ai_day_zone(p_model.model));
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
  spread_step := v_step.step;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_at, v_held_rpm, v_held, paced_until,
    spread_at, v_step.limit_name);
  outcome := v_verdict.outcome;
  cause := v_verdict.cause;
  window_full := v_verdict.window_full;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_guard public.google_ai_admission_settings, p_zone text, p_at timestamp with time zone, p_locked boolean, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0, p_settled timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.google_ai_counter_at
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v public.google_ai_counter_at;
  v_ring record;
begin
  v.settled := p_settled;
  v.at := coalesce(p_settled, case when p_locked then greatest(p_at, p_row.window_at) else p_at end);
  v.minute := public.google_ai_window_length(p_guard.minute_guard_ms);
  v.day_guard := p_guard.day_guard_ms * interval '1 millisecond';
  v.day := case when p_locked then greatest(public.google_ai_day_in(v.at, p_zone), p_row.day_bucket)
                else public.google_ai_day_in(v.at, p_zone) end;
  v.counts := public.google_ai_day_counts(p_row.day_bucket, p_row.rpd_used, p_row.rpd_next_used, p_row.rpd_prev_used,
    v.day);
  v.midnight := public.google_ai_midnight_after_in(v.at, p_zone);
  v.day_start := public.google_ai_day_start_in(v.day, p_zone);
  v.near_end := v.at >= v.midnight - v.day_guard;
  v.near_start := v.at < v.day_start + v.day_guard;
  v_ring := public.google_ai_ring_at(case when p_settled is null then v.at end, v.minute, p_row.ring_low,
    p_row.ring, p_row.window_requests, coalesce(p_row.window_tokens, 0), p_requests, p_tokens, p_settled);
  v.ring_low := v_ring.ring_low;
  v.ring := v_ring.ring;
  v.sum_requests := v_ring.sum_requests;
  v.sum_tokens := v_ring.sum_tokens;
  return v;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules record, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_zone text;  -- the zone of the provider's day
begin
  if p_rules.outcome = 'rpd' then
    v_zone := public.google_ai_day_zone(p_model.model);
    reopens_at := case when not (p_model.rpd - p_rules.held_rpd > p_at.counts[1]) then p_at.midnight
                       when p_at.near_end then public.google_ai_midnight_after_in(p_at.midnight, v_zone)
                       else public.google_ai_day_start_in(public.google_ai_day_in(p_at.at, v_zone), v_zone)
                       end + p_at.day_guard;
    return;
  end if;
  if p_rules.window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, coalesce(p_model.limit_pool, p_model.model),
      p_at.at, p_at.minute, p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name);
    if p_rules.outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                     where a.quota_group = p_quota_group and a.model = p_model.model
                                       and a.status = 'reserved' and a.admitted_at > p_at.at - p_at.minute
                                       and a.admitted_at < 'infinity') then
      recheck_at := p_at.at + p_recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_rules.outcome = 'pace' then
    reopens_at := greatest(p_rules.paced_until, reopens_at);
    recheck_at := null;
  elsif p_rules.spread_at is not null then
    reopens_at := greatest(p_rules.spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at public.google_ai_counter_at, p_window_requests integer, p_day_requests integer)
 RETURNS public.google_ai_share_use[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- (Apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (p_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(case when p_at.settled is null then p_at.at end, p_at.minute,
      v_old.ring_low, v_old.ring, v_old.window_requests, null, p_window_requests, 0, p_at.settled);
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if p_day_requests > 0 or v_old.day_bucket = p_at.day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_at.day);
      v_new.day_bucket := p_at.day;
      v_new.day_used := greatest(0, v_days[1] + p_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_at.near_end then p_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_at.near_start then p_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the booking, this request in its window
  v_rules record;      -- what the rules say (google_ai_booking_rules)
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      outcome := 'skipped';
      return;
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, v_guard, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_at, p_tokens, p_output);
    outcome := v_rules.outcome; cause := v_rules.cause; day_bucket := v_at.day;
    minute_bucket := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if outcome <> 'booked' then
      select r.reopens_at, r.recheck_at into reopens_at, recheck_at
      from public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at, p_tokens,
        v_guard.recheck_ms) r;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = google_ai_book_group.minute_bucket,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.rpm_used else 0 end
                        + 1,
      tpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_at.counts[1] + 1,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then 1 else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then 1 else 0 end,
      ring_low        = v_at.ring_low,
      ring            = v_at.ring,
      window_requests = v_at.sum_requests,
      window_tokens   = v_at.sum_tokens,
      window_at       = v_at.at,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_at.at, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned,
                                    v_at, 1, 1) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    admitted_at := v_at.at;
    quota := public.google_ai_booked_quota(p_model, p_quota_group, v_at, v_rules.kept)
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

CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of p_now, in the provider's day (google_ai_counter_at)
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute and the day, counted as google_ai_book_group counts them (google_ai_counter_at): the ring
  -- moved on to p_now, the next to leave the window its oldest seconds; within the guard of a midnight
  -- the other day's count binds too.
  v_at := public.google_ai_counter_at(v_row, public.google_ai_admission_guard(), public.google_ai_day_zone(p_model),
    p_now, false);
  if p_rpm is not null then
    requests_left := greatest(0, p_rpm - v_at.sum_requests);
    requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute), p_now);
  end if;
  if p_tpm is not null then
    tokens_left := greatest(0, p_tpm - v_at.sum_tokens);
    tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute, true),
      p_now);
  end if;
  if p_rpd is not null then
    day_left := greatest(0, p_rpd - greatest(v_at.counts[1], case when v_at.near_end then v_at.counts[2] else 0 end,
                                             case when v_at.near_start then v_at.counts[3] else 0 end));
    day_reset_at := case when v_at.near_start and v_at.counts[3] > v_at.counts[1] then v_at.day_start
                         else v_at.midnight end + v_at.day_guard;
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
    if p_rpd is not null and cooldown_until >= v_at.midnight then
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

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the admission's second (google_ai_counter_at)
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -1 else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce((select l.limit_pool
    from public.google_ai_model_limits l where l.model = p_att.model), p_att.model)
  for update;
  if not found then
    return;
  end if;
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (only a release gives those counts back: a finalize reads no zone); its owners' day is its own.
  v_at := public.google_ai_counter_at(v_row, public.google_ai_admission_guard(),
    case when p_released then public.google_ai_day_zone(p_att.model) end, null, false, v_requests,
    case when p_att.admitted_at is not null then v_delta else 0 end, p_att.admitted_at);
  v_at.day := p_att.day_bucket;
  if p_att.booked_output_tokens is not null then
    select b.input_until, b.output_until into v_row.input_until, v_row.output_until
    from public.google_ai_buckets_settled(p_att, p_tokens, p_released, v_row.input_until, v_row.output_until,
      v_at.minute) b;
  end if;

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_end
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_start
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
    ring = v_at.ring,
    window_requests = v_at.sum_requests, window_tokens = v_at.sum_tokens,
    input_until = v_row.input_until, output_until = v_row.output_until,
    share_use = case when p_released and c.share_use is not null then public.google_ai_share_use_counted(c.share_use,
                  null, array(select s.id from public.google_ai_quota_shares s
                              where s.model = p_att.model
                                and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
                  v_at, v_requests, -1)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_booked_quota(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, OUT outcome text, OUT cause text, OUT window_full boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) from public, anon, authenticated, service_role;
comment on type public.google_ai_counter_at is 'A quota group''s counter row as of an instant (google_ai_counter_at): the day, its counts, midnight, near-end, near-start and the ring, as booking, the quota and settling read them.';
revoke all on function public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_guard public.google_ai_admission_settings, p_zone text, p_at timestamp with time zone, p_locked boolean, p_requests integer, p_tokens integer, p_settled timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_times(p_rules record, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at public.google_ai_counter_at, p_window_requests integer, p_day_requests integer) from public, anon, authenticated, service_role;
