-- Windows on the providers' clocks: a provider's day (midnight to midnight in its row's day_zone), the
-- owner's Pacific day, the sliding minute window (60 s plus a guard) as a ring of seconds, and the
-- spread's schedule.
set check_function_bodies = off;

-- date_trunc with a time zone is STABLE, so the minute is too (an IMMUTABLE declaration over it kept
-- the planner from inlining it).
CREATE OR REPLACE FUNCTION public.google_ai_minute_window(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

-- The answer of finalize and release for a reservation that is not open (any more).
CREATE OR REPLACE FUNCTION public.google_ai_not_open(p_reservation_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return jsonb_build_object('ok', false, 'error', 'not_open',
    'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
end
$$;

-- The owner's day: Pacific time, midnight to midnight (23, 24 or 25 hours), the day and month of every
-- budget (a caller's or client's requests, tokens and money). The zone is named here only. A quota
-- group's day (RPD, its shares' day and pace) is its provider's (google_ai_day_in and the two below).
CREATE OR REPLACE FUNCTION public.google_ai_pacific_zone() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select 'America/Los_Angeles'::text $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone public.google_ai_pacific_zone())::pg_catalog.date $$;

-- The moment the Pacific day after p_at's begins.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select ((public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1)::pg_catalog.timestamp
                  at time zone public.google_ai_pacific_zone()) $$;

-- A provider's day: midnight to midnight in its zone (google_ai_providers.day_zone, which
-- google_ai_day_zone reads), 23, 24 or 25 hours where the zone keeps summer time.
CREATE OR REPLACE FUNCTION public.google_ai_day_in(p_at timestamp with time zone, p_zone text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone p_zone)::pg_catalog.date $$;

-- The moment day p_day begins in zone p_zone.
CREATE OR REPLACE FUNCTION public.google_ai_day_start_in(p_day date, p_zone text) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_day::pg_catalog.timestamp at time zone p_zone) $$;

CREATE OR REPLACE FUNCTION public.google_ai_midnight_after_in(p_at timestamp with time zone, p_zone text)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select public.google_ai_day_start_in(public.google_ai_day_in(p_at, p_zone) operator(pg_catalog.+) 1,
                                               p_zone) $$;

-- The zone the day of p_model's provider turns in (its provider row's day_zone; UTC, the column's
-- default, for a model no row names). PL/pgSQL, so its one lookup keeps its plan (a SQL function
-- that is not inlined is planned on every call), and a call to it leaves an expression simple.
CREATE OR REPLACE FUNCTION public.google_ai_day_zone(p_model text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
begin
  return coalesce((select p.day_zone from public.google_ai_model_limits m
                   join public.google_ai_providers p on p.name = m.provider
                   where m.model = p_model), 'UTC');
end
$$;

-- The guarded sliding window: Google's minute plus the guard (google_ai_admission_settings.minute_guard_ms)
-- that holds whatever Google's window, clock or delay is.
CREATE OR REPLACE FUNCTION public.google_ai_window_length(p_minute_guard_ms integer) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select ((60000 operator(pg_catalog.+) p_minute_guard_ms) operator(pg_catalog.*) interval '1 millisecond') $$;

-- A row's day counts as of Pacific day p_day, as {today's, counted ahead for tomorrow, yesterday's}.
-- The row keeps the counts of its day_bucket: used, counted ahead for the next day (the guard before
-- midnight), and the day before's (the guard after it). A row of yesterday carries today's guard
-- count; an older row counts nothing.
CREATE OR REPLACE FUNCTION public.google_ai_day_counts(p_bucket date, p_used integer, p_next integer, p_prev integer,
    p_day date) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_bucket operator(pg_catalog.=) p_day
              then array[coalesce(p_used, 0), coalesce(p_next, 0), coalesce(p_prev, 0)]
              when p_bucket operator(pg_catalog.=) (p_day operator(pg_catalog.-) 1)
              then array[coalesce(p_next, 0), 0, coalesce(p_used, 0)]
              else array[0, 0, 0] end
$$;

-- The spread of a model's window (p_burst: google_ai_model_limits.spread_burst): each quota group hands its
-- window out on a schedule (google_ai_usage_counters.spread_until, a GCRA "theoretical arrival
-- time"), one step per request: p_window / RPM, or the request's tokens' part of p_window / TPM when
-- that is longer (limit_name says which). Every booking moves it one step on (google_ai_spread_next);
-- while the spread holds (google_ai_spread_holds: requests wait), a request may be booked when the
-- schedule is at most tolerance = (spread_burst - 1) RPM steps ahead of now.
-- So under a flood at most spread_burst requests go at once, then one per step, and capacity comes
-- back to the window a request at a time instead of all at once a window later. Microseconds are
-- rounded up: the schedule never runs faster than the limit. All null: the model is not spread (asked
-- first, before any arithmetic: most rows are not). (PL/pgSQL: a SQL function that is not inlined is
-- planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_spread_step(p_burst integer, p_window interval, p_rpm integer,
    p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_window_us numeric;
  v_request_us numeric;
  v_token_us numeric;
begin
  if p_burst is null or (p_rpm is null and p_tpm is null) then
    return;
  end if;
  v_window_us := extract(epoch from p_window) * 1000000;
  v_request_us := case when p_rpm > 0 then ceil(v_window_us / p_rpm) end;
  v_token_us := case when p_tpm > 0 then ceil(v_window_us * greatest(p_tokens, 0) / p_tpm) end;
  limit_name := case when coalesce(v_token_us, 0) > coalesce(v_request_us, 0) then 'tpm' else 'rpm' end;
  step := greatest(v_request_us, v_token_us, 0) * interval '1 microsecond';
  tolerance := (p_burst - 1) * coalesce(v_request_us, greatest(v_token_us, 0)) * interval '1 microsecond';
end
$$;

-- The schedule a quota group's slots keep for a waiter in the queue, as the booking keeps it at the
-- group's RPM (p_rpm: the model row's, or the one its provider stated for the group): the spread's step
-- and tolerance (a request bucket, bucket_share, for every class), and whether it holds the waiter's slots
-- back (spaced: a bucket always, a spread only for a waiter some class ranks before, p_ranked). Null
-- step: not spread.
CREATE OR REPLACE FUNCTION public.google_ai_queue_spread(p_model public.google_ai_model_limits, p_rpm integer,
    p_window interval, p_ranked boolean, OUT step interval, OUT tolerance interval, OUT spaced boolean)
    RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_spread record;
begin
  v_spread := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_rpm * p_model.bucket_share))::integer end, p_window, p_rpm, null, 0);
  step := v_spread.step;
  tolerance := v_spread.tolerance;
  spaced := step is not null and (p_model.bucket_share is not null or p_ranked);
end
$$;

-- The schedule after a booking at p_now: one step after the booking's place. A sliding window's spread
-- (p_grid) keeps its grid for a booking at most half a step after its place (its waiter woke a little
-- late), so waking up late does not cost the window capacity under sustained demand; one later than
-- that (the schedule fell behind: nobody asked) starts it again from now. A bucket (not p_grid) refills
-- from its last taking, however late that came: a step after the later of its place and now, so no two
-- bookings of a bucket of one are closer than its step. Null step: not spread (null). STABLE, as
-- timestamptz minus an interval is: so it is inlined into the booking's statement, not called.
CREATE OR REPLACE FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone,
    p_now timestamp with time zone, p_step interval, p_grid boolean) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case
    when p_spread_until operator(pg_catalog.>=) (p_now operator(pg_catalog.-)
           case when p_grid then p_step operator(pg_catalog./) 2 else interval '0' end)
              then p_spread_until else p_now end operator(pg_catalog.+) p_step
$$;

-- A bucket: a limit of p_limit a window (p_window, the guarded minute) refilled continuously, never
-- reset, as Anthropic counts (its capacity unpublished: p_share of the limit, null all of it). Its
-- state is one time, p_until: when it is full again (null or past: full now), a GCRA's "theoretical
-- arrival time" per token, as spread_until is per request. A request of p_cost fits when the bucket
-- holds that much, or when it is full (a request larger than the bucket empties a full one, rather
-- than waiting for ever). until: the state after taking it (p_until when it does not fit); opens_at:
-- null when it fits, else when it will. Microseconds are rounded up: it never refills faster than the
-- limit. No limit: nothing taken. (PL/pgSQL: a SQL function that is not inlined is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_bucket_take(p_until timestamp with time zone,
    p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, p_cost integer,
    OUT until timestamp with time zone, OUT opens_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
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
$$;

-- A ring of seconds with its sums, as google_ai_ring_at answers it (its four parameters of the same names,
-- moved) and google_ai_ring_counted takes it. (A named type: a function with OUT parameters builds its
-- result's shape again on every call.)
CREATE TYPE public.google_ai_ring AS (
    ring_low bigint,
    ring integer[],
    sum_requests integer,
    sum_tokens bigint
);

COMMENT ON TYPE public.google_ai_ring IS 'A sliding window''s ring of seconds and its sums (google_ai_ring_at).';

-- A ring started again at p_at, p_span seconds long (google_ai_ring_at, when it counts nothing, the
-- guard changed its span, or it last moved a span or more ago): the seconds of the old ring still in
-- the window are kept, the others let go. (A longer guard cannot bring back the seconds let go.)
CREATE OR REPLACE FUNCTION public.google_ai_ring_restarted(p_at timestamp with time zone, p_window interval,
    p_span integer, INOUT ring_low bigint, INOUT ring integer[], INOUT sum_requests integer,
    INOUT sum_tokens bigint) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_old integer[] := case when coalesce(sum_requests, 0) > 0 and ring_low is not null then ring end;
  v_old_span integer := coalesce(cardinality(v_old) / 4, 0);
  v_from bigint := greatest(coalesce(ring_low, v_now), v_now - v_old_span + 1);
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
  v_i integer;
begin
  ring := pg_catalog.array_fill(0, array[4 * p_span]);
  sum_requests := 0;
  sum_tokens := case when sum_tokens is not null then 0 end;
  for k in 0 .. least(v_now, coalesce(ring_low, v_now) + v_old_span - 1) - v_from loop
    v_s := v_from + k;
    v_i := (v_s % v_old_span)::integer * 4;
    continue when v_old[v_i + 1] = 0 or v_s <= v_now - p_span
               or public.google_ai_ring_time(v_s, v_old[v_i + 4]) + p_window <= p_at;
    ring[(v_s % p_span)::integer * 4 + 1 : (v_s % p_span)::integer * 4 + 4] := v_old[v_i + 1 : v_i + 4];
    sum_requests := sum_requests + v_old[v_i + 1];
    sum_tokens := sum_tokens + v_old[v_i + 2];
  end loop;
  ring_low := case when v_old is null then v_now else v_now - p_span + 1 end;
end
$$;

-- The sliding window as a ring of seconds, kept on the row it limits (google_ai_usage_counters,
-- google_ai_share_use): one integer array, four entries per second of admissions - their count,
-- their tokens, the first and the last of their times (microseconds into the second) - for the
-- span = 1 + the guarded window in whole seconds (second s at (s % span) * 4 + 1), and the sums of
-- the counts beside it. A second's first admission leaves the window on time (first + p_window), the
-- others with its last (their tokens too): exact for up to two admissions a second, never early, at
-- most one second late. ring_low: every second below it has left.
-- This moves the ring (its four parameters of google_ai_ring's names) to p_at (null: where it is),
-- letting go what left the window, then counts p_requests and p_tokens at p_at (a booking now here,
-- anything else google_ai_ring_counted). Tokens are kept when sum_tokens is not null. (The ring's
-- fields loose, not the ring whole: on the reserve's path a ring built to be passed cost 6.6k
-- instructions a call more, counted.)
CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval,
    ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint,
    p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0) RETURNS public.google_ai_ring
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer;
  v_i integer;
begin
  if v_now is not null and (ring is null or ring_low is null or coalesce(sum_requests, 0) = 0
                            or cardinality(ring) <> 4 * v_span or v_now - ring_low >= v_span) then
    -- Nothing counted, the guard changed, or a span or more passed since it moved (the seconds up to
    -- now - span have left whatever their times: their last admission was at most the guarded window
    -- ago): the ring starts again at p_at.
    select r.ring_low, r.ring, r.sum_requests, r.sum_tokens into ring_low, ring, sum_requests, sum_tokens
    from public.google_ai_ring_restarted(p_at, p_window, v_span, ring_low, ring, sum_requests, sum_tokens) r;
  end if;
  if ring is null then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- Up to the current second: empty seconds are passed, full ones let go as their admissions leave.
  while ring_low < v_now loop
    v_i := (ring_low % v_span)::integer * 4;
    if ring[v_i + 1] > 0 then
      if public.google_ai_ring_time(ring_low, ring[v_i + 4]) + p_window <= p_at then
        sum_requests := sum_requests - ring[v_i + 1];
        sum_tokens := sum_tokens - ring[v_i + 2];
        ring[v_i + 1 : v_i + 4] := '{0,0,0,0}';
      else
        if ring[v_i + 3] < ring[v_i + 4] and public.google_ai_ring_time(ring_low, ring[v_i + 3]) + p_window <= p_at then
          sum_requests := sum_requests - 1;
          ring[v_i + 1] := ring[v_i + 1] - 1;
          ring[v_i + 3] := ring[v_i + 4];
        end if;
        exit; -- (every later second's admissions are later than this one's last)
      end if;
    end if;
    ring_low := ring_low + 1;
  end loop;
  if p_requests = 0 and p_tokens = 0 then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  if p_requests > 0 and p_tokens >= 0 and v_now is not null then
    -- A booking now (nearly every call): the lines below in smaller expressions (they cost by size: 90k less).
    v_i := (v_now % v_span)::integer * 4;
    v_us := round((date_part('epoch', p_at) - v_now) * 1000000)::integer;
    ring[v_i + 1 : v_i + 4] := array[ring[v_i + 1] + p_requests,
      ring[v_i + 2] + case when sum_tokens is not null then p_tokens else 0 end,
      case when ring[v_i + 1] = 0 then v_us else least(ring[v_i + 3], v_us) end, greatest(ring[v_i + 4], v_us)];
    sum_requests := sum_requests + p_requests;
    sum_tokens := sum_tokens + p_tokens;
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  return public.google_ai_ring_counted(row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring,
    p_window, p_at, p_requests, p_tokens, false);
end
$$;

-- The ring p_ring of window p_window (google_ai_ring_at), not moved, with p_requests and p_tokens
-- counted in the second of p_at while that second is in the ring: a correction (p_correction: a request
-- given back, the provider's count of its tokens, in the second of its admission: none for a second
-- that left), or a booking google_ai_ring_at does not count as one now. Negative: never below nothing; a
-- request given back leaves the others of its second with the last (which of them it was is not
-- known), and one from before the second's first left already, with it.
CREATE OR REPLACE FUNCTION public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean)
    RETURNS public.google_ai_ring
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_second bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer := round((date_part('epoch', p_at) - v_second) * 1000000)::integer;
  v_i integer := (v_second % v_span)::integer * 4;
  ring integer[];
  v_count integer; v_tokens integer;  -- the second's count and tokens after this
begin
  if p_ring.ring is null or (p_requests = 0 and p_tokens = 0) or v_second < p_ring.ring_low
     or v_second >= p_ring.ring_low + v_span or (p_correction and p_ring.ring[v_i + 1] = 0) then
    return p_ring;
  end if;
  ring := p_ring.ring;
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when p_ring.sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens)
                   else ring[v_i + 2] end;
  p_ring.sum_requests := p_ring.sum_requests + v_count - ring[v_i + 1];
  p_ring.sum_tokens := p_ring.sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
  return row(p_ring.ring_low, ring, p_ring.sum_requests, p_ring.sum_tokens)::public.google_ai_ring;
end
$$;

-- The moment p_us microseconds into second p_second of the epoch (to_timestamp rounds to the
-- microsecond, far coarser than a double's error here).
CREATE OR REPLACE FUNCTION public.google_ai_ring_time(p_second bigint, p_us integer) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select pg_catalog.to_timestamp(p_second::double precision operator(pg_catalog.+)
                                         (p_us::double precision operator(pg_catalog./) 1000000)) $$;

-- When the oldest second of a ring that counts anything next lets something go (google_ai_ring_at):
-- a request when its first admission leaves, tokens (p_tokens) when its last does; null when it
-- counts nothing.
CREATE OR REPLACE FUNCTION public.google_ai_ring_frees_at(p_ring_low bigint, p_ring integer[], p_window interval,
    p_tokens boolean DEFAULT false) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_span integer := cardinality(p_ring) / 4;
  v_i integer;
begin
  -- (Offsets from p_ring_low: a FOR variable is an integer, and epoch seconds pass 2^31 in 2038.)
  for k in 0 .. coalesce(v_span, 0) - 1 loop
    v_i := ((p_ring_low + k) % v_span)::integer * 4;
    if p_ring[v_i + case when p_tokens then 2 else 1 end] > 0 then
      return public.google_ai_ring_time(p_ring_low + k, p_ring[v_i + case when p_tokens then 4 else 3 end]) + p_window;
    end if;
  end loop;
  return null;
end
$$;

-- When each admission a ring counts leaves the window (google_ai_ring_at: a second's first admission on
-- time, the others with its last), oldest first.
CREATE OR REPLACE FUNCTION public.google_ai_ring_expiries(p_ring_low bigint, p_ring integer[], p_window interval)
    RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
  -- Each second r.s (an offset from p_ring_low: epoch seconds pass 2^31 in 2038) at r.i, its n-th admission.
  return coalesce((
    select array_agg(public.google_ai_ring_time(r.s, p_ring[r.i + case when n = 1 then 3 else 4 end]) + p_window
                     order by r.s, n)
    from generate_series(0, cardinality(p_ring) / 4 - 1) k
    cross join lateral (select p_ring_low + k as s, ((p_ring_low + k) % (cardinality(p_ring) / 4))::integer * 4 as i) r
    cross join lateral generate_series(1, p_ring[r.i + 1]) n), '{}');
end
$$;

-- Milliseconds from p_now until p_at, rounded up (a caller that waits that long is not early); 0 if past,
-- null if there is no such time. (int8larger, not greatest: it keeps a null, and p_at is named once, so
-- the function is inlined even when p_at is a call.)
CREATE OR REPLACE FUNCTION public.google_ai_ms_until(p_at timestamp with time zone,
    p_now timestamp with time zone) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select pg_catalog.int8larger(0, pg_catalog.ceil(extract(epoch from (p_at operator(pg_catalog.-) p_now))
                                                         operator(pg_catalog.*) 1000)::bigint) $$;

-- A quota group's counter row as of an instant, the one setup that booking (google_ai_book_group), the
-- quota read (google_ai_group_quota) and settling (google_ai_settle_admission) share, and the rules take
-- whole: at, the instant; minute, the guarded window (google_ai_window_length), and day_guard; the
-- provider's day at it (zone), its counts (google_ai_day_counts: today's, ahead for tomorrow,
-- yesterday's), the next midnight and the day's start, and whether at is within the guard of either
-- (near_end, near_start: the other day's count binds too); the ring (google_ai_ring_at) moved on to at.
CREATE TYPE public.google_ai_counter_at AS (
    at timestamp with time zone,
    minute interval,
    day_guard interval,
    zone text,
    day date,
    counts integer[],
    midnight timestamp with time zone,
    day_start timestamp with time zone,
    near_end boolean,
    near_start boolean,
    ring_low bigint,
    ring integer[],
    sum_requests integer,
    sum_tokens bigint
);

COMMENT ON TYPE public.google_ai_counter_at IS
    'A quota group''s counter row as of an instant (google_ai_counter_at): the guards, the provider''s day, its '
    'counts, midnight, near-end, near-start and the ring moved on, as booking, the quota read and settling read them.';

-- The counter row p_row as of p_at in zone p_zone (google_ai_counter_at, the type): the ring with p_requests and
-- p_tokens more counted at p_at. Under the row's lock (p_locked) neither the clock nor the day goes back
-- past the row's; a settle (p_settled) counts them in p_at's second without moving the ring on.
-- (One return of one row: a field assigned at a time costs more.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_zone text,
    p_at timestamp with time zone, p_locked boolean, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0,
    p_settled boolean DEFAULT false) RETURNS public.google_ai_counter_at
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_at timestamptz := case when p_locked then greatest(p_at, p_row.window_at) else p_at end;
  v_minute interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_day date := greatest(public.google_ai_day_in(v_at, p_zone), case when p_locked then p_row.day_bucket end);
  v_midnight timestamptz := public.google_ai_midnight_after_in(v_at, p_zone);
  v_start timestamptz := public.google_ai_day_start_in(v_day, p_zone);
  v_ring record := case when p_settled
    then public.google_ai_ring_counted(row(p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0))::public.google_ai_ring, v_minute, v_at, p_requests, p_tokens, true)
    else public.google_ai_ring_at(v_at, v_minute, p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0), p_requests, p_tokens) end;
begin
  return row(v_at, v_minute, v_day_guard, p_zone, v_day, public.google_ai_day_counts(p_row.day_bucket, p_row.rpd_used,
    p_row.rpd_next_used, p_row.rpd_prev_used, v_day), v_midnight, v_start, v_at >= v_midnight - v_day_guard,
    v_at < v_start + v_day_guard, v_ring.ring_low, v_ring.ring, v_ring.sum_requests,
    v_ring.sum_tokens)::public.google_ai_counter_at;
end
$$;
