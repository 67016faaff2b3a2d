-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Anthropic's word that its request bucket holds no request, when even its earliest reading
--   is later than the gateway's own request bucket's next place, moves that place to it (no rest of the model
--   otherwise); a bucket's waiters' openings are all now
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb)
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
    v_day := greatest(public.google_ai_day_in(v_now, p_zone), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_midnight_after_in(v_now, p_zone);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_day_start_in(v_day, p_zone) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_now, v_window, v_day, p_tokens,
      v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end, v_near_start, p_output);
    outcome := v_rules.outcome; cause := v_rules.cause; day_bucket := v_day;
    minute_bucket := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
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
      spread_until    = public.google_ai_spread_next(c.spread_until, v_now, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, 1, null, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
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
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when v_bucket is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
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
      case when v_spaced then v_spread.step end, v_spread.tolerance, v_bucket is null);
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

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
  v_place timestamptz;   -- the gateway's own place for the next request in the model's request bucket
begin
  if p_room_until > v_now and p_att.quota_group is not null and p_room_requests = 0 and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  end if;
  if v_model.bucket_share is not null and v_rpm > 0 then
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    select c.spread_until - v_step.tolerance into v_place from public.google_ai_usage_counters c
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model);
    if p_room_until - 60000.0 / v_model.rpm * interval '1 millisecond' > coalesce(v_place, '-infinity') then
      update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
      where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
        and coalesce(c.spread_until, '-infinity') < p_room_until + v_step.tolerance;
    end if;
  elsif p_room_until > v_now and p_att.quota_group is not null then
    select 2 * count(*) filter (where a.status = 'reserved')
        + count(*) filter (where a.admitted_at > p_att.admitted_at),
      coalesce(2 * sum(a.estimated_tokens) filter (where a.status = 'reserved'), 0)
        + coalesce(sum(a.estimated_tokens) filter (where a.admitted_at > p_att.admitted_at), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
    if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;
