-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the queue's estimate for a model whose limits are buckets counts on its request bucket's
--   burst, kept for every class
set check_function_bodies = off;

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
  -- The schedule as google_ai_schedule_place keeps it: a bucket-shaped model's (bucket_share) request
  -- bucket, kept always; else spread_burst, but not for a waiter of the first class (google_ai_spread_holds).
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
