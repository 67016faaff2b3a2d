-- Booking in one quota group: google_ai_book_group counts a request in the group's windows under its
-- counter row's lock (window, day, spread, shares, pace), or says when it may go and why.
set check_function_bodies = off;

-- Pacing: each paced share the requester owns must allow the request's requests more of the day
-- (usable: the model's day, p_model.rpd, less what the other owners' day shares keep: all owners',
-- p_reserved_rpd, less its own). Null: none holds it back; else when the last one allows it: today,
-- else tomorrow (counting what the guard before midnight booked ahead), else later; the days are the
-- provider's, as the counter as of the booking has them (p_at: its instant, day and zone). The
-- requester's paced shares side by side: p_burst, its day share (p_kept), today's and tomorrow's
-- counts (p_used, p_next).
CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_model public.google_ai_model_limits,
    p_at public.google_ai_counter_at, p_request public.google_ai_request, p_reserved_rpd bigint, p_burst integer[],
    p_kept integer[], p_used integer[], p_next integer[]) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_day date := p_at.day;
  v_zone text := p_at.zone;
  v_rpd integer := p_model.rpd;
  v_requests integer := p_request.requests;
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when v_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := v_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + v_requests > public.google_ai_pace_allowance(p_at.at, v_day, p_burst[i], v_usable, v_zone) then
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + requests - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (v_day, p_used[i] + v_requests - p_burst[i]), (v_day + 1, p_next[i] + v_requests - p_burst[i]))
               x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, v_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, v_zone) as e) d),
        public.google_ai_day_start_in(v_day + 2, v_zone)));
    end if;
  end loop;
  return v_at;
end
$$;

-- The limits' verdict on one booking (google_ai_booking_outcome): booked, or the limit that blocks first,
-- its cause, and whether the window is full; google_ai_booking_rules hands it on in its own verdict
-- (google_ai_booking_verdict). (A named type, not OUT parameters: a function's OUT parameters are read
-- from its catalog row again on every call.)
CREATE TYPE public.google_ai_limit_verdict AS (
    outcome text,
    cause text,
    window_full boolean
);

-- What the rules say of a booking (google_ai_booking_rules): the verdict (outcome, cause, window_full:
-- google_ai_booking_outcome's) and what the rules found on the way to it, which the verdict reads (the
-- pace, paced_until; the place in the schedules, spread_at, and the limit whose schedule it is,
-- spread_limit) and a booking writes or answers. (A named type, not OUT parameters: a function's OUT
-- parameters are read from its catalog row again on every call.)
CREATE TYPE public.google_ai_booking_verdict AS (
    outcome text,
    cause text,
    window_full boolean,
    paced_until timestamp with time zone,
    spread_at timestamp with time zone,
    spread_step interval,
    held_rpd bigint,
    live bigint[],
    owned bigint[],
    kept jsonb,
    input_until timestamp with time zone,
    output_until timestamp with time zone,
    spread_limit text
);

-- The booking's verdict, each rule in one place, on the counter as of the booking (p_at:
-- google_ai_counter_at): the day (today's count, and within a guard of midnight the other day's; counts with
-- this request not yet counted, p_held the same of what the others' day shares keep), the pace, the window
-- (with this request counted; p_held_rpm what the others' RPM shares keep), the spread's schedule (named
-- after the limit whose part of the window its step is). outcome: 'booked' or the first that blocks; cause,
-- one meaning each: the day spent or kept by others' shares, a pace, the window full or kept by others'
-- shares, or the request's place in the spread's schedule; window_full: no room in the window for this
-- requester, whatever blocked first. p_rules: the rules' verdict as far as they came
-- (google_ai_booking_rules: the pace, paced_until; the place in the schedules, spread_at, and its limit,
-- spread_limit), which this one completes. p_model, p_class, p_request: the request's model row (its limits
-- after the margin: google_ai_request_limits), class row and the request itself (its requests: what the day
-- must have room for; its caller, client and token: who it books for), whole, so a rule here reads a new
-- column of theirs with no signature changed on the way. (PL/pgSQL returning a record: the rules call it as
-- an expression, where a SQL table function is a statement of its own.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_request public.google_ai_request, p_at public.google_ai_counter_at,
    p_held_rpm bigint, p_held bigint[], p_rules public.google_ai_booking_verdict) RETURNS public.google_ai_limit_verdict
    LANGUAGE plpgsql IMMUTABLE
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class is unused by design, handed down whole for the rule that reads it next,
-- as said above; extra_warnings says nothing else in a body this short.)
declare
  v_requests integer := p_request.requests;
  -- The day has no room for this requester's requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif p_rules.paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_limit_verdict;
  elsif p_rules.spread_at is not null then
    return row(p_rules.spread_limit, 'spread', false)::public.google_ai_limit_verdict;
  end if;
  return row('booked', null, false)::public.google_ai_limit_verdict;
end
$$;

-- The request's place in its group's schedules: one mechanism, a GCRA "theoretical arrival time" on the
-- counter row per schedule, behind both shapes a limit has. The spread of a sliding window
-- (spread_until, google_ai_spread_step: while requests wait, unless the request's own share covers it,
-- p_in_share) is, for a model whose limits are buckets (bucket_share: Anthropic), the request bucket,
-- kept always with its bucket's size as the burst; and such a model's token buckets (itpm, otpm:
-- google_ai_bucket_take) take the request's input (its estimated tokens, less its answer where the row
-- books answers in its tokens) and its answer (output_tokens), all or nothing. place: when the request
-- may go (null: now); limit_name: the limit whose schedule holds it ('tpm' for a token bucket); step:
-- the spread's step after a booking; input_until, output_until: the token buckets as a booking leaves
-- them. p_counter: the group's counter row as locked (its schedules: spread_until, input_until,
-- output_until); p_at: the counter as of the booking (its instant and window); p_class: the request's
-- class (its rank, as the spread holds it).
CREATE OR REPLACE FUNCTION public.google_ai_schedule_place(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_counter public.google_ai_usage_counters,
    p_at public.google_ai_counter_at, p_request public.google_ai_request, p_in_share boolean,
    OUT step interval, OUT place timestamp with time zone, OUT limit_name text,
    OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_now timestamptz := p_at.at;
  v_window interval := p_at.minute;
  v_tokens integer := p_request.estimated_tokens;
  v_output integer := coalesce(p_request.output_tokens, 0);
  v_step record;
  v_in record;
  v_out record;
begin
  v_step := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, v_window, p_model.rpm, p_model.tpm,
    v_tokens);
  step := v_step.step;
  limit_name := v_step.limit_name;
  if v_step.step is not null and p_counter.spread_until - v_step.tolerance > v_now
     and (p_model.bucket_share is not null
          or (not p_in_share and public.google_ai_spread_holds(p_model.model, p_class.rank, v_now))) then
    place := p_counter.spread_until - v_step.tolerance;
  end if;
  if p_model.itpm is null and p_model.otpm is null then
    return;
  end if;
  v_in := public.google_ai_bucket_take(p_counter.input_until, v_now, v_window, p_model.itpm, p_model.bucket_share,
    v_tokens - case when p_model.booked_output_tokens is not null then v_output else 0 end);
  v_out := public.google_ai_bucket_take(p_counter.output_until, v_now, v_window, p_model.otpm, p_model.bucket_share,
    v_output);
  if greatest(v_in.opens_at, v_out.opens_at) > coalesce(place, '-infinity') then
    place := greatest(v_in.opens_at, v_out.opens_at);
    limit_name := 'tpm';
  end if;
  -- (Written only when the request is booked: a refused booking writes nothing.)
  input_until := v_in.until;
  output_until := v_out.until;
end
$$;

-- The rules a booking in one group meets. The model's shares as the requester sees them at p_now, in
-- one pass: what the others' shares still keep from it, of the window and of each day
-- google_ai_day_counts names; its own (its class's or its caller's), which a booking counts, and
-- whether one of them still has room in its RPM share (the spread does not hold it then); a share's
-- window is read only where it matters, an owner's only to the spread. Then its pace (paced_until:
-- google_ai_paced_until, when it owns a paced share: usable is the group's day less what the other
-- owners' shares keep), its place in its schedules (spread_at: google_ai_schedule_place, the spread's
-- and a model's buckets; spread_step: the spread's step after a booking; input_until, output_until:
-- the token buckets after it; spread_limit: the limit whose schedule holds it; for a row with no bucket,
-- Google's and OpenAI's, the spread alone as google_ai_schedule_place has it, one call less) and the
-- verdict (google_ai_booking_outcome, on what the rules found so far: the answer's fields but the verdict).
-- p_at: the counter as of the booking (google_ai_counter_at: the window with this request counted, the
-- day's counts before it). What a booking writes
-- and answers comes with it: the others' day shares (held_rpd), the model's shares in id order and the
-- requester's own (live, owned: what the counter row's share_use keeps), what the shares keep for its
-- class and for the others (kept, as google_ai_quota_kept reads it). p_model, p_class, p_caller,
-- p_request: the request's model row (limits after the margin, spread_burst: google_ai_request_limits),
-- class row, caller and the request itself (its tokens, its answer, its requests); p_counter: the group's
-- counter row as locked (its share_use, its spread_until). Each whole, so a rule reads a new column of
-- theirs with no signature changed on the way.
-- (PL/pgSQL, called as an expression: one statement reads the shares, the rest are expressions.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at)
    RETURNS public.google_ai_booking_verdict
    LANGUAGE plpgsql STABLE
    AS $$
declare
  paced_until timestamptz; spread_at timestamptz; live bigint[]; owned bigint[]; kept jsonb;
  input_until timestamptz; output_until timestamptz;  -- its answer's fields
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
  v_verdict public.google_ai_limit_verdict;
  v_rules public.google_ai_booking_verdict;  -- what the rules found, then their verdict
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = p_class.name, false) as for_class,
           coalesce(s.priority_class = p_class.name, false) or coalesce(s.caller = p_caller.name, false) as is_owned,
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

  if p_class.name is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_model, p_at, p_request, v_reserved_rpd, v_pace_burst, v_pace_kept,
      v_pace_used, v_pace_next);
  end if;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm,
      p_request.estimated_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class, p_counter, p_at, p_request, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_rules := row(null, null, null, paced_until, spread_at, v_step.step, v_held[1], live, owned, kept, input_until,
    output_until, v_step.limit_name)::public.google_ai_booking_verdict;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_request, p_at, v_held_rpm, v_held, v_rules);
  v_rules.outcome := v_verdict.outcome;
  v_rules.cause := v_verdict.cause;
  v_rules.window_full := v_verdict.window_full;
  return v_rules;
end
$$;

-- When a refused request may go (reopens_at) and when asking again may help sooner (recheck_at), from
-- what the rules said (p_rules: google_ai_booking_rules) on the counter as of the booking (p_at):
-- the day at midnight plus its guard; a request today's count has room for (beside what the others'
-- day shares keep, held_rpd) was refused
-- by the other day's count within a guard: within the guard before midnight it waits past the next
-- midnight's guard (tomorrow is full too), within the guard after midnight only until that guard ends
-- (yesterday's count stops binding then); the window
-- when it has room for this requester (google_ai_window_reopens_for), sooner if tokens of admissions
-- still in flight come back (after the guard's recheck_ms); a pace or the schedule's place, and the
-- window must have room by then. p_model, p_class, p_caller: whole, as the rules take them.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text,
    p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes,
    p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer DEFAULT 1,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
begin
  if p_rules.outcome = 'rpd' then
    reopens_at := case when p_model.rpd - p_rules.held_rpd <= p_at.counts[1] then p_at.midnight
                       when p_at.near_end then public.google_ai_midnight_after_in(p_at.midnight, p_at.zone)
                       else p_at.day_start end + p_at.day_guard;
    return;
  end if;
  if p_rules.window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, p_class, p_caller, p_at.at,
      p_at.minute, p_tokens, p_requests);
    if p_rules.outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                           where a.quota_group = p_quota_group and a.model = p_model.model
                                             and a.status = 'reserved' and a.admitted_at > p_at.at - p_at.minute
                                             and a.admitted_at < 'infinity') then
      recheck_at := p_at.at + (public.google_ai_admission_guard()).recheck_ms * interval '1 millisecond';
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
$$;

-- A booking in one group, as google_ai_book_group answers it. (A named type, as
-- google_ai_booking_verdict is.)
CREATE TYPE public.google_ai_group_booking AS (
    outcome text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    cause text,
    admitted_at timestamp with time zone,
    quota jsonb
);

-- The quota a booking leaves, its answer's (as google_ai_group_quota reads it, this request counted: the
-- window's figures reset as their oldest seconds leave the ring, now at the latest), so the answer needs no
-- second reading of the window; p_kept: what the model's shares keep for the admitted class (as
-- google_ai_answer_quota_at adds it), added only when they keep something (a concatenation of an empty object
-- is the object as it is, where taking a key out encoded the whole object again); p_followed: a row that follows its
-- provider, the limits it stated for the group as applied (null: the row keeps its own). p_model: limits
-- after the margin (and followed); p_at: the counter as of the booking. (SQL without a SET clause, one
-- expression: PostgreSQL inlines it into google_ai_book_group's, which then costs what it did written there.)
CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_quota_group text, p_model public.google_ai_model_limits,
    p_at public.google_ai_counter_at, p_requests integer, p_kept jsonb, p_followed jsonb) RETURNS jsonb
    LANGUAGE sql
    AS $$
  select jsonb_build_object(
        'model', p_model.model,
        'quota_group', p_quota_group,
        'rpm', p_model.rpm,
        'requests_left', case when p_model.rpm is not null then greatest(0, p_model.rpm - p_at.sum_requests) end,
        'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
        'tpm', p_model.tpm,
        'tokens_left', case when p_model.tpm is not null then greatest(0, p_model.tpm - p_at.sum_tokens) end,
        'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
        'rpd', p_model.rpd,
        'day_left', case when p_model.rpd is not null then greatest(0, p_model.rpd - (greatest(p_at.counts[1],
          case when p_at.near_end then p_at.counts[2] end, case when p_at.near_start then p_at.counts[3] end)
          + p_requests)) end,
        'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
          case when p_at.near_start and p_at.counts[3] > p_at.counts[1] then p_at.day_start else p_at.midnight end
          + p_at.day_guard, p_at.at) end)
      || case when p_kept is null then '{}' else jsonb_build_object('kept', p_kept) end
      || case when p_followed is null then '{}' else jsonb_build_object('followed', p_followed) end
$$;

-- A quota group's counter row for p_model, locked (created on the group's first use of the model); with
-- p_skip_locked, a row another reservation holds is passed over: all fields null. (A new row, or one
-- housekeeping removed when idle, starts its owners' use again: share_use is on the row.) (The row as one
-- whole-row value: one column to set up, not one per column of the row; counted, about 30k less.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_locked(p_quota_group text, p_model text, p_skip_locked boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_usage_counters;
begin
  for i in 1 .. 2 loop
    if p_skip_locked then
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update skip locked);
    elsif pg_catalog.current_setting('eve.batch_member', true) = 'on' then
      -- (A batch's later reservation never waits: 37_lock_waits.sql.)
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update nowait);
    else
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update);
    end if;
    exit when v_row.id is not null;
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

-- Books one request (p_request: its requests at its provider, all counted at once) on a quota group's counter
-- row (its pool's, when the model names one: limit_pool), or says why not. outcome: 'booked', 'skipped' (the
-- row is locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd', 'pace', 'rpm',
-- 'tpm'; cause names why (google_ai_refusal_cause's list), reopens_at when it may go, recheck_at when asking
-- again may help sooner (tokens of admissions in flight may come back). p_model, p_class, p_caller,
-- p_request: the request's model row (limits after the margin), class row, caller and the request itself (its
-- tokens; output_tokens, the answer it is sent with, what a model's otpm bucket takes), whole, handed to the
-- rules (google_ai_booking_rules). A booking answers with the quota it leaves (google_ai_booked_quota). The
-- subtransaction (begin ... exception) gives the row lock back when the row is full, so the caller can move
-- on to the next group without holding it. p_zone: the zone the provider's day turns in, the group's day
-- (google_ai_candidate_groups reads it with the candidates). The answer's day_left: the day is the largest of
-- today's count and, within a guard of midnight, the other day's, before this request; reset at midnight plus
-- the guard, or after midnight at that guard's end when yesterday's is larger (google_ai_booked_quota). A row
-- that follows its provider (provider_limits 'follow') is held to the limits the provider stated for the
-- group (google_ai_followed_limits, on the counter row as locked), its answer's quota saying them (followed).
-- (Its answers are assigned, not selected into: a select ... into is a statement of its own, counted about
-- 15k instructions.)
CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_now timestamp with time zone, p_skip_locked boolean, p_zone text) RETURNS public.google_ai_group_booking
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the booking, this request in its window
  v_rules public.google_ai_booking_verdict;  -- what the rules say (google_ai_booking_rules)
  v_minute timestamptz;  -- the calendar minute it counts in
  v_times record;      -- a refusal's (google_ai_refusal_times)
  v_followed jsonb;    -- a row that follows its provider: the limits the provider stated, as applied
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      return row('skipped', null, null, null, null, null, null, null)::public.google_ai_group_booking;
    end if;
    -- (A raise applies to what is booked, the window holds it; a lowering refuses nothing admitted, it counts it.)
    if p_model.provider_limits = 'follow' then
      p_model := public.google_ai_followed_limits(p_model, v_row.stated_limits);
      v_followed := coalesce(to_jsonb(v_row.stated_limits), '[]'::jsonb);
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      p_request.requests, p_request.estimated_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, p_request, v_row, v_at);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at,
        p_request.estimated_tokens, p_request.requests);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + p_request.requests,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_request.estimated_tokens,
      rpd_used        = v_at.counts[1] + p_request.requests,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then p_request.requests else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then p_request.requests else 0 end,
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
                                    v_at, p_request.requests) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at, public.google_ai_booked_quota(p_quota_group,
      p_model, v_at, p_request.requests, v_rules.kept, v_followed))::public.google_ai_group_booking;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
  end;
  -- Refused (the lock given back): the rules' outcome and cause, and the times set above.
  return row(v_rules.outcome, v_minute, v_at.day, v_times.reopens_at, v_times.recheck_at, v_rules.cause, null,
    null)::public.google_ai_group_booking;
end
$$;
