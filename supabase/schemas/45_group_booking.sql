-- Booking in one quota group: google_ai_try_book counts a request in the group's windows under its
-- counter row's lock (minute, day, spread, shares, pace, budget), or says when it may go and why.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- Whether one more request of p_tokens fits a counter row of today, away from the day guard, with
-- the window's sums given: the checks of google_ai_try_book when no share or pacing applies.
CREATE OR REPLACE FUNCTION public.google_ai_fast_fits(p_row public.google_ai_usage_counters, p_win_requests integer,
    p_win_tokens bigint, p_rpm integer, p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone,
    p_day_guard interval) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select p_row.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
     and p_now operator(pg_catalog.<) (public.google_ai_pacific_midnight_after(p_now)
       operator(pg_catalog.-) p_day_guard)
     and p_now operator(pg_catalog.>=) (public.google_ai_pacific_start(public.google_ai_pacific_day(p_now))
                                        operator(pg_catalog.+) p_day_guard)
     and (p_rpd is null or (p_row.rpd_used operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpd)
     and (p_rpm is null or (p_win_requests operator(pg_catalog.+) 1) operator(pg_catalog.<=) p_rpm)
     and (p_tpm is null or (p_win_tokens operator(pg_catalog.+) p_tokens) operator(pg_catalog.<=) p_tpm)
$$;

-- One try at booking a request on a quota group's counter row. Returns 'booked', 'skipped' (row
-- locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd', 'rpm', 'tpm'.
-- The subtransaction (begin ... exception) gives the row lock back when the row is full, so the
-- caller can move on to the next group without holding it.
CREATE OR REPLACE FUNCTION public.google_ai_try_book(p_quota_group text, p_model text, p_rpm integer, p_tpm integer,
    p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean,
    p_reservation_id uuid DEFAULT NULL::uuid, p_class text DEFAULT NULL::text, p_caller text DEFAULT NULL::text,
    OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text,
    OUT admitted_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := (60000 + v_guard.minute_guard_ms) * interval '1 millisecond';
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_minute timestamptz;
  v_day date;
  v_midnight timestamptz;
  v_day_start timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_rpm_used integer;
  v_tpm_used integer;
  v_rpd_used integer;
  v_rpd_next integer;
  v_rpd_prev integer;
  v_ring record;
  v_written integer;
  v_win_requests integer;
  v_win_tokens bigint;
  -- Shares
  v_share record;
  v_used integer;
  v_next integer;
  v_prev integer;
  v_reserved_rpd integer := 0;
  v_held_rpm integer := 0;
  v_held_rpd integer := 0;
  v_held_next integer := 0;
  v_held_prev integer := 0;
  v_owned bigint[] := '{}';
  v_owned_used integer[] := '{}';
  v_owned_next integer[] := '{}';
  v_owned_prev integer[] := '{}';
  v_pace_burst integer[] := '{}';
  v_pace_kept integer[] := '{}';
  v_pace_used integer[] := '{}';
  v_pace_next integer[] := '{}';
  v_usable integer;
  v_pace_at timestamptz;
  v_at timestamptz;
  v_window_full boolean;
  -- The spread of the window (google_ai_spread_step): the schedule's step and tolerance for this request
  v_spread record;
  v_in_share boolean := false;
  v_spread_at timestamptz;
begin
  begin
    for i in 1 .. 2 loop
      if p_skip_locked then
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update skip locked;
      else
        select * into v_row from public.google_ai_usage_counters c
        where c.quota_group = p_quota_group and c.model = p_model
        for update;
      end if;
      exit when found;
      if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                   where c.quota_group = p_quota_group and c.model = p_model) then
        outcome := 'skipped';
        return;
      end if;
      insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
      values (p_quota_group, p_model, 0, 0, 0)
      on conflict (quota_group, model) where quota_group is not null do nothing;
    end loop;
    if v_row.id is null then
      raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
    end if;

    -- Decide with the time at which we hold the lock, and never move a window backwards.
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_minute := greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_rpm_used := case when v_row.minute_bucket = v_minute then v_row.rpm_used else 0 end;
    v_tpm_used := case when v_row.minute_bucket = v_minute then v_row.tpm_used else 0 end;
    if v_row.day_bucket = v_day then
      v_rpd_used := v_row.rpd_used; v_rpd_next := v_row.rpd_next_used; v_rpd_prev := v_row.rpd_prev_used;
    elsif v_row.day_bucket = v_day - 1 then
      -- The day rolled over: what was counted ahead becomes today's, yesterday's count stays in view.
      v_rpd_used := v_row.rpd_next_used; v_rpd_next := 0; v_rpd_prev := coalesce(v_row.rpd_used, 0);
    else
      v_rpd_used := 0; v_rpd_next := 0; v_rpd_prev := 0;
    end if;
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_day_start := public.google_ai_pacific_start(v_day);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < v_day_start + v_day_guard;

    -- The window moved on to now, with this request counted (written only if it fits). A new counter
    -- row (first use, or housekeeping removed an idle one): the owners' use starts again with it.
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_win_requests := v_ring.sum_requests - 1;
    v_win_tokens := v_ring.sum_tokens - p_tokens;
    if v_row.window_at is null then
      delete from public.google_ai_share_usage u
      where u.quota_group = p_quota_group
        and u.share_id in (select s.id from public.google_ai_quota_shares s where s.model = p_model);
    end if;

    -- The model's shares in this group: what the others' shares keep from this requester, and the
    -- use of its own (rolled to the current day like the counter row).
    for v_share in
      select s.id, s.reserved_rpm, s.reserved_rpd, s.pace_burst,
             coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false) as owned,
             r.sum_requests as win, u.day_bucket, coalesce(u.day_used, 0) as day_used,
             coalesce(u.day_next_used, 0) as day_next_used, coalesce(u.day_prev_used, 0) as day_prev_used
      from public.google_ai_quota_shares s
      left join public.google_ai_share_usage u on u.quota_group = p_quota_group and u.share_id = s.id
      cross join lateral public.google_ai_ring_at(v_now, v_window, u.ring_low, u.ring,
        u.window_requests, null) r
      where s.model = p_model
      order by s.id
    loop
      if v_share.day_bucket = v_day then
        v_used := v_share.day_used; v_next := v_share.day_next_used; v_prev := v_share.day_prev_used;
      elsif v_share.day_bucket = v_day - 1 then
        v_used := v_share.day_next_used; v_next := 0; v_prev := v_share.day_used;
      else
        v_used := 0; v_next := 0; v_prev := 0;
      end if;
      v_reserved_rpd := v_reserved_rpd + coalesce(v_share.reserved_rpd, 0);
      if v_share.owned then
        v_owned := v_owned || v_share.id;
        v_owned_used := v_owned_used || v_used;
        v_owned_next := v_owned_next || v_next;
        v_owned_prev := v_owned_prev || v_prev;
        -- A request its own RPM share still has room for is not held back by the spread.
        v_in_share := v_in_share or v_share.win < coalesce(v_share.reserved_rpm, 0);
        if v_share.pace_burst is not null then
          -- Checked below, once the day shares of all owners are known.
          v_pace_burst := v_pace_burst || v_share.pace_burst;
          v_pace_kept := v_pace_kept || coalesce(v_share.reserved_rpd, 0);
          v_pace_used := v_pace_used || v_used;
          v_pace_next := v_pace_next || v_next;
        end if;
      else
        v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_share.win);
        v_held_rpd := v_held_rpd + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_used);
        v_held_next := v_held_next + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_next);
        v_held_prev := v_held_prev + greatest(0, coalesce(v_share.reserved_rpd, 0) - v_prev);
      end if;
    end loop;

    -- Pacing: each paced share the requester owns must allow one more of the day (usable: the
    -- group's day less what other owners' shares keep). The refusal names when the last one allows.
    for i in 1 .. case when p_rpd is null then 0 else cardinality(v_pace_burst) end loop
      v_usable := p_rpd - (v_reserved_rpd - v_pace_kept[i]);
      if v_pace_used[i] + 1 > public.google_ai_pace_allowance(v_now, v_day, v_pace_burst[i], v_usable) then
        -- Today, else tomorrow (counting what the guard before midnight booked ahead), else later.
        v_at := coalesce(public.google_ai_pace_opens_at(v_day, v_pace_used[i], v_pace_burst[i], v_usable),
                         public.google_ai_pace_opens_at(v_day + 1, v_pace_next[i], v_pace_burst[i], v_usable),
                         public.google_ai_pacific_start(v_day + 2));
        v_pace_at := greatest(v_pace_at, v_at);
      end if;
    end loop;

    -- The spread: the request waits for its place in the schedule when google_ai_spread_holds says so,
    -- unless its own share covers it.
    v_spread := public.google_ai_spread_step((select l.spread_burst from public.google_ai_model_limits l
                                              where l.model = p_model), v_window, p_rpm, p_tpm, p_tokens);
    if v_spread.step is not null and not v_in_share and v_row.spread_until - v_spread.tolerance > v_now
       and public.google_ai_spread_holds(p_model, public.google_ai_class_rank(p_class), v_now) then
      v_spread_at := v_row.spread_until - v_spread.tolerance;
    end if;

    v_window_full := (p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm)
                  or (p_tpm is not null and v_win_tokens + p_tokens > p_tpm);
    outcome := case
      when p_rpd is not null and (v_rpd_used + 1 > p_rpd - v_held_rpd
                                  or (v_near_end and v_rpd_next + 1 > p_rpd - v_held_next)
                                  or (v_near_start and v_rpd_prev + 1 > p_rpd - v_held_prev)) then 'rpd'
      when v_pace_at is not null then 'pace'
      when p_rpm is not null and v_win_requests + 1 > p_rpm - v_held_rpm then 'rpm'
      when p_tpm is not null and v_win_tokens + p_tokens > p_tpm then 'tpm'
      -- Held by the spread: named after the limit whose share of the window the request's step is.
      when v_spread_at is not null then v_spread.limit_name
      else 'booked' end;
    -- Why, one meaning each: the day spent or kept by others' day shares, a pace, the window full or
    -- kept by others' shares, or the request's place in the spread's schedule.
    cause := case
      when outcome = 'booked' then null
      when outcome = 'rpd' then case when v_rpd_used + 1 > p_rpd or (v_near_end and v_rpd_next + 1 > p_rpd)
                                          or (v_near_start and v_rpd_prev + 1 > p_rpd)
                                     then 'day_exhausted' else 'share_kept' end
      when outcome = 'pace' then 'pace'
      when not v_window_full then 'spread'
      when (p_rpm is not null and v_win_requests + 1 > p_rpm) or (p_tpm is not null and v_win_tokens + p_tokens > p_tpm)
        then 'window_full'
      else 'share_kept' end;
    minute_bucket := v_minute;
    day_bucket := v_day;

    if outcome <> 'booked' then
      if outcome = 'rpd' then
        -- Today's count is spent until midnight, and the guard after it still counts yesterday's.
        reopens_at := case when v_near_end and v_rpd_used + 1 <= p_rpd - v_held_rpd
                           then public.google_ai_pacific_midnight_after(v_midnight) + v_day_guard
                           else v_midnight + v_day_guard end;
      else
        if v_window_full then
          reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, v_now, v_window, p_rpm, p_tpm,
            p_tokens, p_class, p_caller);
          -- Tokens may come back while admissions of the window are still in flight.
          if outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                         where a.quota_group = p_quota_group and a.model = p_model
                                           and a.status = 'reserved' and a.admitted_at > v_now - v_window) then
            recheck_at := v_now + v_guard.recheck_ms * interval '1 millisecond';
          end if;
        end if;
        if outcome = 'pace' then
          -- Paced until then, and the window must have room by then too.
          reopens_at := greatest(v_pace_at, reopens_at);
          recheck_at := null;
        elsif v_spread_at is not null then
          -- Its place in the schedule, and the window must have room by then too.
          reopens_at := greatest(v_spread_at, reopens_at);
          if recheck_at >= reopens_at then
            recheck_at := null;
          end if;
        end if;
      end if;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    if cardinality(v_owned) > 0 then
      -- The owners' day and window; an owner's first admission in the group writes its row.
      update public.google_ai_share_usage u set
        day_bucket = v_day, day_used = o.used + 1,
        day_next_used = o.next + case when v_near_end then 1 else 0 end,
        day_prev_used = o.prev + case when v_near_start then 1 else 0 end,
        (ring_low, ring, window_requests) =
          (select r.ring_low, r.ring, r.sum_requests
           from public.google_ai_ring_at(v_now, v_window, u.ring_low, u.ring, u.window_requests, null, 1, 0) r)
      from unnest(v_owned, v_owned_used, v_owned_next, v_owned_prev) as o(id, used, next, prev)
      where u.quota_group = p_quota_group and u.share_id = o.id;
      get diagnostics v_written = row_count;
      if v_written < cardinality(v_owned) then
        insert into public.google_ai_share_usage (quota_group, share_id, day_bucket, day_used, day_next_used,
          day_prev_used, ring_low, ring, window_requests)
        select p_quota_group, o.id, v_day, o.used + 1, o.next + case when v_near_end then 1 else 0 end,
               o.prev + case when v_near_start then 1 else 0 end, r.ring_low, r.ring, r.sum_requests
        from unnest(v_owned, v_owned_used, v_owned_next, v_owned_prev) as o(id, used, next, prev)
        cross join public.google_ai_ring_at(v_now, v_window, null, null, 0, null, 1, 0) r
        where not exists (select 1 from public.google_ai_share_usage u
                          where u.quota_group = p_quota_group and u.share_id = o.id);
      end if;
    end if;

    admitted_at := v_now;
    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_day,
      rpm_used        = v_rpm_used + 1,
      tpm_used        = v_tpm_used + p_tokens,
      rpd_used        = v_rpd_used + 1,
      rpd_next_used   = v_rpd_next + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_rpd_prev + case when v_near_start then 1 else 0 end,
      ring_low        = v_ring.ring_low,
      ring            = v_ring.ring,
      window_requests = v_ring.sum_requests,
      window_tokens   = v_ring.sum_tokens,
      window_at       = v_now,
      spread_until    = public.google_ai_spread_next(v_row.spread_until, v_now, v_spread.step),
      updated_at      = v_now
    where c.id = v_row.id;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, buckets, reopens_at and recheck_at keep the values set above
  end;
end
$$;
