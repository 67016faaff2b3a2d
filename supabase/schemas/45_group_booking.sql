-- Booking in one quota group: google_ai_book_group counts a request in the group's windows under its
-- counter row's lock (window, day, spread, shares, pace), or says when it may go and why.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- The model's shares in a quota group as one requester sees them at p_now, in one pass (a SQL
-- function that returns a table, so it is inlined into the booking's statement):
--   burst                the model's spread burst (google_ai_spread_step), read in the same pass;
--   reserved_rpd         the day shares of all owners (what a paced owner's usable day leaves out);
--   held_rpm, held_rpd,  what the others' shares still keep from the requester: of the window, and
--   held_next, held_prev of each day google_ai_day_counts names;
--   live                 the model's shares, in id order (what the row's share_use keeps);
--   owned                the requester's own shares (its class's or its caller's), which a booking counts;
--   in_share             one of them still has room in its RPM share (the spread does not hold it);
--   pace_*               its paced shares: burst, day share, today's and tomorrow's count;
--   kept                 what the shares keep for the requester's class and for the others, for the
--                        answer's quota (as google_ai_quota_kept reads it).
-- A share's window is read only where it matters: an owner's only to the spread. The arrays follow
-- the shares' ids. p_share_use: the counter row's use of the shares (google_ai_usage_counters).
CREATE OR REPLACE FUNCTION public.google_ai_share_state(p_share_use public.google_ai_share_use[], p_model text,
    p_now timestamp with time zone, p_window interval, p_day date, p_rpm integer, p_rpd integer, p_class text,
    p_caller text)
    RETURNS TABLE(burst integer, reserved_rpd bigint, held_rpm bigint, held_rpd bigint, held_next bigint,
    held_prev bigint, live bigint[], owned bigint[], in_share boolean, pace_burst integer[],
    pace_kept integer[], pace_used integer[], pace_next integer[], kept jsonb)
    LANGUAGE sql STABLE
    AS $$
  with m as (select l.spread_burst from public.google_ai_model_limits l where l.model operator(pg_catalog.=) p_model)
  select (select m.spread_burst from m),
         coalesce(sum(x.reserved_rpd), 0),
         coalesce(sum(greatest(0, coalesce(x.reserved_rpm, 0) operator(pg_catalog.-) x.win))
           filter (where not x.owned), 0),
         coalesce(sum(greatest(0, coalesce(x.reserved_rpd, 0) operator(pg_catalog.-) x.day[1]))
           filter (where not x.owned), 0),
         coalesce(sum(greatest(0, coalesce(x.reserved_rpd, 0) operator(pg_catalog.-) x.day[2]))
           filter (where not x.owned), 0),
         coalesce(sum(greatest(0, coalesce(x.reserved_rpd, 0) operator(pg_catalog.-) x.day[3]))
           filter (where not x.owned), 0),
         array_agg(x.id),
         array_agg(x.id) filter (where x.owned),
         coalesce(bool_or(x.owned and x.win operator(pg_catalog.<) coalesce(x.reserved_rpm, 0)), false),
         array_agg(x.pace_burst) filter (where x.owned and x.pace_burst is not null),
         array_agg(coalesce(x.reserved_rpd, 0)) filter (where x.owned and x.pace_burst is not null),
         array_agg(x.day[1]) filter (where x.owned and x.pace_burst is not null),
         array_agg(x.day[2]) filter (where x.owned and x.pace_burst is not null),
         case when p_class is not null and count(*) operator(pg_catalog.>) 0 then public.google_ai_kept_object(
           p_rpm, p_rpd, sum(x.reserved_rpm) filter (where not x.for_class),
           sum(x.reserved_rpm) filter (where x.for_class), sum(x.reserved_rpd) filter (where not x.for_class),
           sum(x.reserved_rpd) filter (where x.for_class)) end
  from (select s.id, s.reserved_rpm, s.reserved_rpd, s.pace_burst, o.for_class, o.owned,
               case when s.reserved_rpm is null or (o.owned and (select m.spread_burst from m) is null) then 0
                    else (public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests,
                            null)).sum_requests end as win,
               public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_day) as day
        from public.google_ai_quota_shares s
        left join unnest(p_share_use) u on u.share_id operator(pg_catalog.=) s.id
        cross join lateral (select coalesce(s.priority_class operator(pg_catalog.=) p_class, false) as for_class,
                                   coalesce(s.priority_class operator(pg_catalog.=) p_class, false)
                                   or coalesce(s.caller operator(pg_catalog.=) p_caller, false) as owned) o
        where s.model operator(pg_catalog.=) p_model
        order by s.id) x
$$;

-- Pacing: each paced share the requester owns must allow one more of the day (usable: the group's
-- day less what the other owners' shares keep). Null: none holds it back; else when the last one
-- allows it: today, else tomorrow (counting what the guard before midnight booked ahead), else later.
CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer,
    p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[])
    RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when p_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := p_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + 1 > public.google_ai_pace_allowance(p_now, p_day, p_burst[i], v_usable) then
      v_at := greatest(v_at, coalesce(public.google_ai_pace_opens_at(p_day, p_used[i], p_burst[i], v_usable),
                                      public.google_ai_pace_opens_at(p_day + 1, p_next[i], p_burst[i], v_usable),
                                      public.google_ai_pacific_start(p_day + 2)));
    end if;
  end loop;
  return v_at;
end
$$;

-- The booking's verdict, each rule in one place: the day (today's count, and within a guard of
-- midnight the other day's; p_day: {today, ahead, yesterday} with this request not yet counted, p_held
-- the same of what the others' day shares keep), the pace, the window (p_requests and p_tokens with
-- this request counted; p_held_rpm what the others' RPM shares keep), the spread's schedule (named
-- after the limit whose part of the window its step is). outcome: 'booked' or the first that blocks;
-- cause, one meaning each: the day spent or kept by others' shares, a pace, the window full or kept
-- by others' shares, or the request's place in the spread's schedule; window_full: no room in the
-- window for this requester, whatever blocked first.
CREATE OR REPLACE FUNCTION public.google_ai_booking_verdict(p_rpm integer, p_tpm integer, p_rpd integer,
    p_requests integer, p_tokens bigint, p_day integer[], p_near_end boolean, p_near_start boolean,
    p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone,
    p_spread_at timestamp with time zone, p_spread_limit text)
    RETURNS TABLE(outcome text, cause text, window_full boolean)
    LANGUAGE sql IMMUTABLE
    AS $$
  select case when d.full then 'rpd'
              when p_paced_until is not null then 'pace'
              when w.rpm_full then 'rpm'
              when w.tpm_full then 'tpm'
              when p_spread_at is not null then p_spread_limit
              else 'booked' end,
         case when d.full then case when d.spent then 'day_exhausted' else 'share_kept' end
              when p_paced_until is not null then 'pace'
              when w.spent then 'window_full'
              when w.rpm_full then 'share_kept'
              when p_spread_at is not null then 'spread' end,
         w.rpm_full or w.tpm_full
  from (select p_rpd is not null
               and ((p_day[1] operator(pg_catalog.+) 1) operator(pg_catalog.>) (p_rpd operator(pg_catalog.-) p_held[1])
                    or (p_near_end and (p_day[2] operator(pg_catalog.+) 1)
                                       operator(pg_catalog.>) (p_rpd operator(pg_catalog.-) p_held[2]))
                    or (p_near_start and (p_day[3] operator(pg_catalog.+) 1)
                                         operator(pg_catalog.>) (p_rpd operator(pg_catalog.-) p_held[3]))) as full,
               p_rpd is not null
               and ((p_day[1] operator(pg_catalog.+) 1) operator(pg_catalog.>) p_rpd
                    or (p_near_end and (p_day[2] operator(pg_catalog.+) 1) operator(pg_catalog.>) p_rpd)
                    or (p_near_start and (p_day[3] operator(pg_catalog.+) 1) operator(pg_catalog.>) p_rpd)) as spent) d,
       (select p_rpm is not null and p_requests operator(pg_catalog.>) (p_rpm operator(pg_catalog.-) p_held_rpm)
                 as rpm_full,
               p_tpm is not null and p_tokens operator(pg_catalog.>) p_tpm as tpm_full,
               (p_rpm is not null and p_requests operator(pg_catalog.>) p_rpm)
               or (p_tpm is not null and p_tokens operator(pg_catalog.>) p_tpm) as spent) w
$$;

-- The rules a booking in one group meets, read in one statement (a SQL function that returns a table,
-- so it is inlined into the booking's): the shares as the requester sees them (google_ai_share_state),
-- its pace (paced_until: google_ai_paced_until, when it owns a paced share), its place in the spread's
-- schedule (spread_at: the schedule holds the request when google_ai_spread_holds says so, unless its
-- own share covers it; spread_step: the schedule's step after a booking) and the verdict
-- (google_ai_booking_verdict). p_requests and p_window_tokens: the window with this request counted;
-- p_counts: the day's counts before it. What a booking writes and answers comes with it: the others'
-- day shares (held_rpd), the model's shares and the requester's own (live, owned), what the shares
-- keep (kept). p_share_use: the counter row's use of the shares.
CREATE OR REPLACE FUNCTION public.google_ai_group_rules(p_share_use public.google_ai_share_use[], p_model text,
    p_now timestamp with time zone, p_window interval, p_day date, p_rpm integer, p_tpm integer, p_rpd integer,
    p_tokens integer, p_class text, p_caller text, p_requests integer, p_window_tokens bigint, p_counts integer[],
    p_near_end boolean, p_near_start boolean, p_spread_until timestamp with time zone)
    RETURNS TABLE(outcome text, cause text, window_full boolean, paced_until timestamp with time zone,
    spread_at timestamp with time zone, spread_step interval, held_rpd bigint, live bigint[], owned bigint[],
    kept jsonb)
    LANGUAGE sql STABLE
    AS $$
  select v.outcome, v.cause, v.window_full, r.paced_until, r.spread_at, sp.step, s.held_rpd, s.live, s.owned, s.kept
  from public.google_ai_share_state(p_share_use, p_model, p_now, p_window, p_day, p_rpm, p_rpd, p_class,
         p_caller) s
  cross join lateral public.google_ai_spread_step(s.burst, p_window, p_rpm, p_tpm, p_tokens) sp
  -- (offset 0: each rule is asked once, not once for each place the verdict names it.)
  cross join lateral (
    select case when s.pace_burst is not null
                then public.google_ai_paced_until(p_now, p_day, p_rpd, s.reserved_rpd, s.pace_burst, s.pace_kept,
                       s.pace_used, s.pace_next) end as paced_until,
           case when sp.step is not null and not s.in_share
                     and p_spread_until operator(pg_catalog.-) sp.tolerance operator(pg_catalog.>) p_now
                     and public.google_ai_spread_holds(p_model, public.google_ai_class_rank(p_class), p_now)
                then p_spread_until operator(pg_catalog.-) sp.tolerance end as spread_at
    offset 0) r
  cross join lateral public.google_ai_booking_verdict(p_rpm, p_tpm, p_rpd, p_requests, p_window_tokens, p_counts,
    p_near_end, p_near_start, s.held_rpm, array[s.held_rpd, s.held_next, s.held_prev], r.paced_until, r.spread_at,
    sp.limit_name) v
$$;

-- When a refused request may go (reopens_at) and when asking again may help sooner (recheck_at):
-- the day at midnight plus its guard; a request today's count has room for (p_today_fits) was refused
-- by the other day's count within a guard: within the guard before midnight it waits past the next
-- midnight's guard (tomorrow is full too), within the guard after midnight only until that guard ends
-- (yesterday's count stops binding then); the window
-- when it has room for this requester (google_ai_window_reopens_for), sooner if tokens of admissions
-- still in flight come back; a pace or the schedule's place, and the window must have room by then.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_outcome text, p_window_full boolean, p_quota_group text,
    p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_rpd integer,
    p_tokens integer, p_class text, p_caller text, p_midnight timestamp with time zone, p_day_guard interval,
    p_near_end boolean, p_today_fits boolean, p_paced_until timestamp with time zone,
    p_spread_at timestamp with time zone, p_recheck_ms integer, OUT reopens_at timestamp with time zone,
    OUT recheck_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
begin
  if p_outcome = 'rpd' then
    reopens_at := case when not p_today_fits then p_midnight
                       when p_near_end then public.google_ai_pacific_midnight_after(p_midnight)
                       else public.google_ai_pacific_start(public.google_ai_pacific_day(p_now)) end + p_day_guard;
    return;
  end if;
  if p_window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, p_now, p_window, p_rpm, p_tpm,
      p_tokens, p_class, p_caller);
    if p_outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                     where a.quota_group = p_quota_group and a.model = p_model
                                       and a.status = 'reserved' and a.admitted_at > p_now - p_window) then
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
$$;

-- The quota a booking leaves, as google_ai_group_quota reads it (this request counted): the window's
-- requests and tokens (p_requests, p_tokens) with the times their oldest seconds leave the ring
-- (google_ai_ring_frees_at; now at the latest), and the day's count, the largest of today's and,
-- within a guard of midnight, the other day's (p_day: {today, ahead, yesterday} before this request),
-- until the day resets (p_midnight plus p_day_guard; after midnight, within its guard, when yesterday's
-- count is the larger, that guard's end). p_kept: what the model's shares keep, for the admitted class
-- (as google_ai_answer_quota_at adds it). Inlined into the booking's assignment.
CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_model text, p_quota_group text, p_rpm integer,
    p_tpm integer, p_rpd integer, p_now timestamp with time zone, p_requests integer, p_tokens bigint,
    p_ring_low bigint, p_ring integer[], p_window interval, p_day integer[], p_near_end boolean,
    p_near_start boolean, p_today date, p_midnight timestamp with time zone, p_day_guard interval, p_kept jsonb)
    RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select jsonb_build_object(
    'model', p_model,
    'quota_group', p_quota_group,
    'rpm', p_rpm,
    'requests_left', case when p_rpm is not null then greatest(0, p_rpm operator(pg_catalog.-) p_requests) end,
    'requests_reset_ms', case when p_rpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_ring_low, p_ring, p_window), p_now), p_now) end,
    'tpm', p_tpm,
    'tokens_left', case when p_tpm is not null then greatest(0, p_tpm operator(pg_catalog.-) p_tokens) end,
    'tokens_reset_ms', case when p_tpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_ring_low, p_ring, p_window, true), p_now), p_now) end,
    'rpd', p_rpd,
    'day_left', case when p_rpd is not null
                     then greatest(0, p_rpd operator(pg_catalog.-) (greatest(p_day[1],
                                        case when p_near_end then p_day[2] end,
                                        case when p_near_start then p_day[3] end) operator(pg_catalog.+) 1)) end,
    'day_reset_ms', case when p_rpd is not null then public.google_ai_ms_until(
      case when p_near_start and p_day[3] operator(pg_catalog.>) p_day[1] then public.google_ai_pacific_start(p_today)
           else p_midnight end operator(pg_catalog.+) p_day_guard, p_now) end)
    operator(pg_catalog.||) case when p_kept is not null then jsonb_build_object('kept', p_kept)
                                 else '{}'::jsonb end
$$;

-- A quota group's counter row for p_model, locked (created on the group's first use of the model); with
-- p_skip_locked, a row another reservation holds is passed over: all fields null. (A new row, or one
-- housekeeping removed when idle, starts its owners' use again: share_use is on the row.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_locked(p_quota_group text, p_model text, p_skip_locked boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_usage_counters;
begin
  for i in 1 .. 2 loop
    if p_skip_locked then
      select * into v_row from public.google_ai_usage_counters c
      where c.quota_group = p_quota_group and c.model = p_model for update skip locked;
    else
      select * into v_row from public.google_ai_usage_counters c
      where c.quota_group = p_quota_group and c.model = p_model for update;
    end if;
    exit when found;
    if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                 where c.quota_group = p_quota_group and c.model = p_model) then
      return v_row;
    end if;
    insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
    values (p_quota_group, p_model, 0, 0, 0)
    on conflict (quota_group, model) where quota_group is not null do nothing;
  end loop;
  if v_row.id is null then
    raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
  end if;
  return v_row;
end
$$;

-- Books one request on a quota group's counter row, or says why not. outcome: 'booked', 'skipped'
-- (the row is locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd',
-- 'pace', 'rpm', 'tpm'; cause names why (google_ai_refusal_cause's list), reopens_at when it may go,
-- recheck_at when asking again may help sooner (tokens of admissions in flight may come back).
-- A booking answers with the quota it leaves (as google_ai_group_quota reads it), so the answer
-- needs no second reading of the window. The subtransaction (begin ... exception) gives the row lock
-- back when the row is full, so the caller can move on to the next group without holding it.
CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model text, p_rpm integer,
    p_tpm integer, p_rpd integer, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean,
    p_class text DEFAULT NULL::text, p_caller text DEFAULT NULL::text, OUT outcome text,
    OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone,
    OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone,
    OUT quota jsonb) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
  v_rules record;      -- what the rules say (google_ai_group_rules)
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, p_model, p_skip_locked);
    if v_row.id is null then
      outcome := 'skipped';
      return;
    end if;

    -- Decided at the time the lock is held; a window, minute or day never moves backwards. The ring
    -- moved on to now with this request counted (written only if it fits).
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_pacific_start(v_day) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    select r.* into v_rules from public.google_ai_group_rules(v_row.share_use, p_model, v_now, v_window, v_day, p_rpm,
      p_tpm, p_rpd, p_tokens, p_class, p_caller, v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end,
      v_near_start, v_row.spread_until) r;
    select v_rules.outcome, v_rules.cause, greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket), v_day
      into outcome, cause, minute_bucket, day_bucket;
    if outcome <> 'booked' then
      select r.reopens_at, r.recheck_at into reopens_at, recheck_at
      from public.google_ai_refusal_times(outcome, v_rules.window_full, p_quota_group, p_model, v_now, v_window,
        p_rpm, p_tpm, p_rpd, p_tokens, p_class, p_caller, v_midnight, v_day_guard, v_near_end,
        v_counts[1] + 1 <= p_rpd - v_rules.held_rpd, v_rules.paced_until, v_rules.spread_at, v_guard.recheck_ms) r;
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
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, 1, null, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
    quota := public.google_ai_booked_quota(p_model, p_quota_group, p_rpm, p_tpm, p_rpd, v_now, v_ring.sum_requests,
      v_ring.sum_tokens, v_ring.ring_low, v_ring.ring, v_window, v_counts, v_near_end, v_near_start, v_day,
      v_midnight, v_day_guard, v_rules.kept);
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, cause, the buckets, reopens_at and recheck_at keep the values set above
  end;
end
$$;
