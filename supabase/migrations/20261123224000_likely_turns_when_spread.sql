-- A likely turn only on a spread model.
--
-- A lower class takes a ticket only when its turn is likely within its wait (20261123220000). On a
-- model that is not spread, a window's slots reopen at once, to whoever is waiting then; turning
-- batch waiters away by their likely turn left those slots to nobody (63-67% of the saturated spans
-- used in the mixed-load benchmark's "queue only" model). There every waiter counts on every slot,
-- as before (google_ai_queue_turn_at).

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the
-- quota groups that may serve the model today: each group offers its free slots now, then one slot
-- as each admission of its window leaves it (admitted_at + window), then the same again a window
-- later; a spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next). free_now counts the slots of each group's first
-- p_slots that are free now. likely_at: the same for a request of class rank p_rank, counting, on a
-- spread model, on the part of each group's slots that the higher classes left in the last window
-- (they will ask again, and go first; at least a tenth): its p_slots-th slot is a group's
-- p_slots / part-th. Null turn_at:
-- no group can serve today (day used up or cooling down everywhere).
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint DEFAULT NULL::smallint, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := (60000 + (public.google_ai_admission_guard()).minute_guard_ms) * interval '1 millisecond';
  v_spread record;
  v_group record;
  v_expiries timestamptz[];
  v_count integer;
  v_higher integer;
  v_part numeric;
  v_needed integer;
  v_free integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}';
  v_likely timestamptz[] := '{}';
  v_day_left bigint := 0;
  v_n integer;
  v_slot timestamptz;
  v_schedule timestamptz;
begin
  free_now := 0;
  v_spread := public.google_ai_spread_step(p_model, v_window, p_rpm, null, 0);
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    select array_agg(a.admitted_at + v_window order by a.admitted_at),
           count(*) filter (where a.class_rank < p_rank)
      into v_expiries, v_higher
    from public.google_ai_admissions a
    where a.quota_group = v_group.quota_group and a.model = p_model and a.admitted_at > p_now - v_window;
    v_count := coalesce(cardinality(v_expiries), 0);
    v_free := greatest(0, p_rpm - v_count);
    -- The group's openings within one window: free now, then as admissions leave.
    v_openings := array_fill(p_now, array[v_free])
                  || coalesce(v_expiries[greatest(1, v_count - p_rpm + 1):v_count], '{}');
    v_n := cardinality(v_openings);
    continue when v_n = 0;
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when v_spread.step is null then 1
                   else greatest(0.1, 1 - coalesce(v_higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots: each opening again a window later, none before the schedule allows.
    v_schedule := v_group.spread_until;
    v_group_slots := '{}';
    for j in 1 .. v_needed loop
      v_slot := v_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * v_window;
      if v_spread.step is not null then
        v_slot := greatest(v_slot, v_schedule - v_spread.tolerance);
        v_schedule := public.google_ai_spread_next(v_schedule, v_slot, v_spread.step);
      end if;
      v_group_slots := v_group_slots || v_slot;
      if j <= p_slots then
        v_slots := v_slots || v_slot;
        if v_slot <= p_now then
          free_now := free_now + 1;
        end if;
      end if;
    end loop;
    for k in 1 .. p_slots loop
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  if free_now >= p_slots then
    turn_at := p_now;
    likely_at := p_now;
    return;
  end if;
  select array_agg(o order by o) into v_slots from unnest(v_slots) o;
  turn_at := greatest(p_now, v_slots[p_slots]);
  select array_agg(o order by o) into v_likely from unnest(v_likely) o;
  likely_at := case when v_likely[p_slots] is not null then greatest(p_now, v_likely[p_slots]) end;
end
$$;
